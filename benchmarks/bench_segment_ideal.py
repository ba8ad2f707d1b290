"""SEI thickness: how precisely the frames themselves fix it, next to what mltem measures.

Run: ``.venv/bin/python benchmarks/bench_segment_ideal.py``
(writes results/segment_ideal.json; see README_segment.md, eighth round).

For every held-out frame of ``bench_segment.py`` (same seeds, doses 15/60/250 e/px) the
generator is run a second time without noise, giving the expected electron count of each
pixel. An ideal observer that knows the mean profile across the SEI (intensity against
the true signed distance ``d`` from the electrode surface, by a local linear fit, over the
SEI-covered surface away from lithium and bubbles) but neither the shot noise nor the
layer's texture measures the inner boundary (``d = 0``) from the pixels with
``d < T/2`` and the outer one (``d = T``) from the rest. A shift of a boundary moves its
half of the profile; the information per pixel is ``mu'(d)^2 / (mu(d) + tau^2(d))``,
with ``tau^2(d)`` the spread of the noise-free image along the surface at that distance
(texture, thickness variation), counted as noise. The Cramer-Rao standard deviation of
the thickness in the frame is ``sqrt(1/F_inner + 1/F_outer)`` px and, for an unbiased
Gaussian estimate, the chance of landing within 10 % is ``erf(0.1 T / (sd sqrt 2))``.

The mean of that chance over the frames is the share of frames within 10 % that the
information in the frames allows; the script reports it next to the share mltem reaches
(refined and from the masks), per movie and pooled. Knowing the mean profile (contrast,
blur, fringes) makes this observer better than any real one: its figure is a ceiling.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench_segment import (  # noqa: E402
    DOSES,
    HELD_OUT_SEED,
    held_out,
    movie_counts,
    positive_int,
    results_path,
    write_results,
)

from mltem._physics import DETECTORS  # noqa: E402

BANDWIDTH_PX = 0.5
MARGIN_PX = 8.0


def signed_distance(electrode: np.ndarray) -> np.ndarray:
    """Distance (px) of each pixel centre from the electrode surface; negative inside."""
    out = ndi.distance_transform_edt(~electrode)
    inside = ndi.distance_transform_edt(electrode)
    return np.where(electrode, -(inside - 0.5), out - 0.5)


def boundary_information(clean: np.ndarray, dist: np.ndarray, use: np.ndarray, split: float,
                         bandwidth_px: float = BANDWIDTH_PX) -> tuple[float, float]:
    """Fisher information (1/px^2) on a shift of the boundaries below and above ``split``.

    ``clean`` is the expected count per pixel, ``dist`` the signed distance of each pixel
    from the inner boundary and ``use`` the pixels to read. The profile ``mu(d)``, its
    slope and the spread ``tau^2(d)`` about it along the surface come from a local linear
    fit (Gaussian kernel of ``bandwidth_px``) on a grid of a quarter of that; each pixel
    adds ``mu'(d)^2 / (mu(d) + tau^2(d))`` to the boundary of its side of ``split``.
    """
    d, y = dist[use].astype(float), clean[use].astype(float)
    if d.size < 3:
        return 0.0, 0.0
    step = bandwidth_px / 4
    grid = np.arange(d.min(), d.max() + step, step)
    x = d[None, :] - grid[:, None]
    w = np.exp(-0.5 * (x / bandwidth_px) ** 2)
    s0, s1, s2 = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
    sy, sxy, syy = w @ y, (w * x) @ y, w @ (y * y)
    det = s0 * s2 - s1 ** 2
    slope = (s0 * sxy - s1 * sy) / np.maximum(det, 1e-12)
    mu = (sy - slope * s1) / s0
    tau2 = np.maximum((syy - 2 * mu * sy - 2 * slope * sxy + mu ** 2 * s0 + 2 * mu * slope * s1 + slope ** 2 * s2) / s0, 0)
    per_px = np.interp(d, grid, slope ** 2 / np.maximum(mu + tau2, 1e-9))
    inner = d < split
    return float(per_px[inner].sum()), float(per_px[~inner].sum())


def frame_crb(clean: np.ndarray, labels: np.ndarray, thickness_px: float) -> float:
    """Cramer-Rao standard deviation (px) of the SEI thickness in one noise-free frame.

    ``labels`` are the true classes (1 electrode, 2 SEI, 3 lithium, 4 bubble). NaN where
    the frame has no SEI.
    """
    sei = labels == 2
    if not sei.any() or not thickness_px > 0:
        return float("nan")
    dist = signed_distance(labels == 1)
    near_sei = ndi.distance_transform_edt(~sei) <= MARGIN_PX
    far_other = ndi.distance_transform_edt(~((labels == 3) | (labels == 4))) > 3
    use = near_sei & far_other & (dist > -MARGIN_PX) & (dist < thickness_px + MARGIN_PX)
    use[:4] = use[-4:] = False
    use[:, :4] = use[:, -4:] = False
    f_in, f_out = boundary_information(clean, dist, use, thickness_px / 2)
    if f_in <= 0 or f_out <= 0:
        return float("inf")
    return math.sqrt(1 / f_in + 1 / f_out)


def within_chance(thickness_px: float, sd_px: float, tol: float = 0.10) -> float:
    """Chance that an unbiased Gaussian estimate with ``sd_px`` lies within ``tol`` of the value."""
    if not (np.isfinite(sd_px) and thickness_px > 0):
        return 0.0
    return math.erf(tol * thickness_px / (sd_px * math.sqrt(2)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer movies (a smoke run)")
    ap.add_argument("--json", default=None,
                    help="default results/segment_ideal.json (results/segment_ideal_haadf.json with --detector haadf)")
    ap.add_argument("--detector", choices=DETECTORS, default="bf",
                    help="image the held-out scenes as bright-field TEM or annular dark-field STEM (then scored with "
                         "segment-unet-haadf and its refiner)")
    ap.add_argument("--scale", type=positive_int, default=1,
                    help="movies per dose times this (as bench_segment.py --scale; written to results/segment_ideal_xN.json "
                         "unless --json)")
    args = ap.parse_args()
    args.json = args.json or str(results_path("segment_ideal", args.detector, args.scale))
    os.environ.setdefault("MLTEM_PROGRESS", "0")
    from mltem.registry import find_model
    from mltem.segment import (
        DETECTOR_MODELS,
        edge_profiles,
        load_sei_refiner,
        measure_movie,
        refine_sei_rows,
        segment_frames,
    )
    from mltem.simulate import simulate_movie

    card = find_model(DETECTOR_MODELS[args.detector], task="segment")
    refiner = load_sei_refiner(card)
    nl, no, frames = movie_counts(args.quick, args.scale)
    movies_out, pooled = [], {"ideal": [], "refined": [], "masks": []}
    for k, dose in enumerate(DOSES):
        seed0 = HELD_OUT_SEED + 1000 * k
        for i, m in enumerate(held_out(nl, no, frames, 256, dose, seed0, detector=args.detector)):
            clean = simulate_movie(frames, (256, 256), kind=m.kind, seed=seed0 + i, dose=dose,
                                   pixel_size_nm=m.pixel_size_nm, noise=False, detector=args.detector)
            if not (clean.masks == m.masks).all():
                raise RuntimeError(f"movie {seed0 + i}: the noise-free run draws other masks")
            pred, psei = segment_frames(m.frames, model=card.path, tile=256, smooth_frames=3, sei_prob=True)
            rows, _ = measure_movie(pred, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
            masks_nm = np.array([r["sei_thickness_nm"] for r in rows], float)
            if refiner is not None:
                refine_sei_rows(rows, edge_profiles(m.frames, pred, psei), refiner, pixel_size_nm=m.pixel_size_nm)
            refined_nm = np.array([r["sei_thickness_nm"] for r in rows], float)
            ok = np.isfinite(m.sei_thickness_nm) & (m.sei_thickness_nm > 0)
            truth_px = m.sei_thickness_nm / m.pixel_size_nm
            sd = np.array([frame_crb(clean.frames[t], m.masks[t], truth_px[t]) if ok[t] else np.nan
                           for t in range(frames)])
            ideal = np.array([within_chance(truth_px[t], sd[t]) for t in range(frames)])[ok]

            def within(got):
                e = np.abs(got[ok] - m.sei_thickness_nm[ok]) / m.sei_thickness_nm[ok]
                return np.where(np.isfinite(e), e <= 0.10, False)

            w_ref, w_mask = within(refined_nm), within(masks_nm)
            bias = float(np.nanmean((refined_nm - m.sei_thickness_nm)[ok]) / m.pixel_size_nm) if ok.any() else None
            pooled["ideal"] += ideal.tolist()
            pooled["refined"] += w_ref.tolist()
            pooled["masks"] += w_mask.tolist()
            movies_out.append({
                "dose": dose, "seed": seed0 + i, "kind": m.kind, "pixel_size_nm": round(m.pixel_size_nm, 3),
                "frames_with_sei": int(ok.sum()),
                "thickness_px": [round(float(v), 2) for v in truth_px[ok]],
                "crb_sd_px": [round(float(v), 3) for v in sd[ok]],
                "ideal_within_10pct": round(float(ideal.mean()), 4) if ok.any() else None,
                "refined_within_10pct": round(float(w_ref.mean()), 4) if ok.any() else None,
                "masks_within_10pct": round(float(w_mask.mean()), 4) if ok.any() else None,
                "refined_bias_px": None if bias is None else round(bias, 3),
            })
            r = movies_out[-1]
            if ok.any():
                print(f"dose {dose:4g} movie {i:2d} {m.kind:6s} {m.pixel_size_nm:4.2f} nm/px  T {truth_px[ok].min():5.1f}-"
                      f"{truth_px[ok].max():5.1f} px  CRB median {np.median(sd[ok]):.2f} px | within 10 %: ideal "
                      f"{r['ideal_within_10pct']:.3f} refined {r['refined_within_10pct']:.3f} masks "
                      f"{r['masks_within_10pct']:.3f}  bias {bias:+.2f} px", flush=True)
    sds = np.array([v for r in movies_out for v in r["crb_sd_px"]])
    summary = {k: round(float(np.mean(v)), 4) for k, v in pooled.items()}
    summary["frames"] = len(pooled["ideal"])
    summary["crb_sd_px_median"] = round(float(np.median(sds)), 3)
    summary["crb_sd_px_p90"] = round(float(np.percentile(sds, 90)), 3)
    for kind in ("liquid", "open"):
        sub = [r for r in movies_out if r["kind"] == kind and r["frames_with_sei"]]
        w = np.array([r["frames_with_sei"] for r in sub], float)
        for key in ("ideal", "refined", "masks"):
            summary[f"{key}_{kind}"] = round(float(np.average([r[f"{key}_within_10pct"] for r in sub], weights=w)), 4)
    result = {"model": card.name, "sha256": card.sha256,
              "sei_refiner": None if refiner is None else refiner.card.sha256,
              "held_out": {"liquid_movies": nl, "open_movies": no, "frames_per_movie": frames, "size": 256,
                           "doses": list(DOSES), "seeds": f"{HELD_OUT_SEED} + 1000 * dose index + i",
                           "detector": args.detector},
              "bandwidth_px": BANDWIDTH_PX, "margin_px": MARGIN_PX,
              "within_10pct": summary, "movies": movies_out}
    write_results(args.json, result)
    print(f"\nframes within 10 % of the true SEI thickness, {summary['frames']} frames: ideal observer "
          f"{summary['ideal']:.3f}, refined {summary['refined']:.3f}, masks {summary['masks']:.3f}; "
          f"CRB sd median {summary['crb_sd_px_median']} px, p90 {summary['crb_sd_px_p90']} px")
    for kind in ("liquid", "open"):
        print(f"  {kind}: ideal {summary[f'ideal_{kind}']:.3f}, refined {summary[f'refined_{kind}']:.3f}, "
              f"masks {summary[f'masks_{kind}']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
