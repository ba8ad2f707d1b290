"""mltem.holography against holospy on holospy's real hologram pair, and a 100-frame series.

Run: ``.venv/bin/python benchmarks/bench_holography.py`` (needs ``pip install -r
benchmarks/requirements.txt`` for holospy). Writes ``results/holography.json`` and prints
a table. Both tools reconstruct the same 512 x 512 Fe-needle hologram (holospy's package
data, FEI Titan G2 60-300 HOLO, 300 kV) with the same sideband, the same aperture (soft
tanh edge, holospy's default radius of half the sideband distance and edge of 5 % of
it) and the same reference hologram, and unwrap the phase; the unwrapped phases are
compared after removing a constant offset, and the times are measured in the same run
(median of repeats, same threads).
"""
from __future__ import annotations

import json
import logging
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _median_time(fn, repeat: int = 7):
    fn()  # warm-up
    ts = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def _rms_offset(a, b) -> float:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d -= d.mean()
    return float(np.sqrt(np.mean(d**2)))


def real_pair() -> dict:
    import holospy
    from holospy import data as hdata

    from mltem import holography as H

    logging.getLogger("holospy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hdata.Fe_needle_hologram()
        r = hdata.Fe_needle_reference_hologram()
        sbp = r.estimate_sideband_position(sb="lower")
        sbs = r.estimate_sideband_size(sbp)
    ny, nx = s.data.shape
    p = [int(v) for v in np.asarray(sbp.data).ravel()]
    radius = float(np.asarray(sbs.data).ravel()[0])
    smooth = 0.05 * radius  # holospy's default edge
    # holospy rolls the FFT by +p, i.e. it reconstructs the sideband at -p (signed)
    ky = -(p[0] if p[0] <= ny // 2 else p[0] - ny)
    kx = -(p[1] if p[1] <= nx // 2 else p[1] - nx)
    obj = np.asarray(s.data, dtype=np.float32)
    ref = np.asarray(r.data, dtype=np.float32)

    def run_holospy():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = s.reconstruct_phase(r, sb_position=sbp, sb_size=sbs, sb_smoothness=smooth * 1.0,
                                    show_progressbar=False)
            return np.asarray(w.unwrapped_phase().data)

    def run_ours(method):
        return lambda: H.reconstruct_hologram(obj, ref, sideband=(ky, kx), aperture="soft", aperture_radius=radius,
                                              smoothness=smooth, unwrap=method).phase

    t_h, ph_h = _median_time(run_holospy)
    t_e, ph_e = _median_time(run_ours("exact"))
    t_f, ph_f = _median_time(run_ours("fast"))
    rec = H.HologramReconstructor(obj.shape, sideband=(ky, kx), aperture_radius=radius, reference=ref,
                                  aperture="soft", smoothness=smooth)
    t_frame_e, _ = _median_time(lambda: rec(obj, unwrap="exact").phase)
    t_frame_f, _ = _median_time(lambda: rec(obj, unwrap="fast").phase)
    wrapped = np.angle(rec.wave(obj))
    d_wrapped = np.angle(np.exp(1j * (wrapped - ph_h)))
    t_det, sb = _median_time(lambda: H.find_sideband(ref), repeat=3)
    est = H.estimate_aperture_radius(obj, sb, reference=ref)
    diff_f = ph_f - ph_h
    diff_f -= np.median(diff_f)
    return {
        "data": "holospy " + holospy.__version__ + " Fe_needle_hologram / Fe_needle_reference_hologram (512 x 512)",
        "sideband_holospy_unshifted_index": p,
        "sideband_ours_ky_kx": [ky, kx],
        "aperture": {"kind": "soft (tanh)", "radius_px": radius, "edge_px": smooth},
        "holospy_time_s": t_h,
        "ours_exact_time_s": t_e,
        "ours_fast_time_s": t_f,
        "ours_exact_per_frame_with_prepared_reference_s": t_frame_e,
        "ours_fast_per_frame_with_prepared_reference_s": t_frame_f,
        "speedup_exact": t_h / t_e,
        "speedup_fast": t_h / t_f,
        "rms_phase_diff_exact_rad": _rms_offset(ph_e, ph_h),
        "rms_phase_diff_fast_rad": _rms_offset(ph_f, ph_h),
        "fast_pixels_differing_by_2pi": int((np.abs(diff_f) > np.pi).sum()),
        "rms_wrapped_phase_diff_rad": float(np.sqrt(np.mean((d_wrapped - d_wrapped.mean()) ** 2))),
        "auto_sideband_ky_kx": [sb.ky, sb.kx],
        "auto_sideband_time_s": t_det,
        "auto_aperture_radius_px": est.radius,
        "auto_aperture_limited_by": est.limited_by,
    }


def series(n_frames: int, shape=(512, 512), seed: int = 0) -> dict:
    """Reconstruct a drifting synthetic series frame by frame; peak traced memory."""
    from scipy import ndimage

    from mltem import holography as H
    from mltem.simulate import phase_charged_sphere, phase_mip_sphere, simulate_hologram

    px = 0.5
    base = (phase_mip_sphere(shape, pixel_size_nm=px, radius_nm=20, mip_v=12)
            + phase_charged_sphere(shape, pixel_size_nm=px, radius_nm=20, charge_e=40))
    ref = simulate_hologram(np.zeros(shape), dose=1000, pixel_size_nm=px, seed=seed).reference
    drift = [(0.04 * i, -0.03 * i) for i in range(n_frames)]  # px

    def frames():
        for i, (dy, dx) in enumerate(drift):
            ph = ndimage.shift(base, (dy, dx), order=1, mode="nearest") + 0.05 * i  # + fringe drift
            yield simulate_hologram(ph, dose=1000, pixel_size_nm=px, seed=seed + 1 + i).hologram

    tracemalloc.start()
    t0 = time.perf_counter()
    t_rec = 0.0
    errs = []
    gen = H.reconstruct_series(frames(), ref, aperture_radius=40)
    while True:
        t = time.perf_counter()
        try:
            r = next(gen)
        except StopIteration:
            break
        t_rec += time.perf_counter() - t
        i = len(errs)
        errs.append(float(np.hypot(r.shift_px[0] + drift[i][0], r.shift_px[1] + drift[i][1])))
    total = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"frames": n_frames, "shape": list(shape), "peak_traced_memory_mb": peak / 2**20,
            "wall_s_including_simulation": total, "max_drift_error_px": max(errs),
            "mean_drift_error_px": float(np.mean(errs))}


def main() -> int:
    try:
        import holospy  # noqa: F401
    except ImportError:
        print("holospy is not installed: pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 1
    import scipy

    res = {"machine": platform.platform(), "python": platform.python_version(), "scipy": scipy.__version__}
    res["real_pair"] = real_pair()
    s10 = series(10)
    s100 = series(100)
    res["series_10"] = s10
    res["series_100"] = s100
    res["series_memory_ratio_100_vs_10"] = s100["peak_traced_memory_mb"] / s10["peak_traced_memory_mb"]
    out = HERE / "results" / "holography.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    rp = res["real_pair"]
    print(f"{'holospy real pair (512x512)':<46} {'time (s)':>9} {'speed-up':>9} {'RMS vs holospy (rad)':>21}")
    print(f"{'holospy reconstruct_phase + unwrapped_phase':<46} {rp['holospy_time_s']:9.4f} {'1.0':>9} {'-':>21}")
    print(f"{'mltem exact unwrap':<46} {rp['ours_exact_time_s']:9.4f} {rp['speedup_exact']:9.1f} "
          f"{rp['rms_phase_diff_exact_rad']:21.2e}")
    print(f"{'mltem fast unwrap':<46} {rp['ours_fast_time_s']:9.4f} {rp['speedup_fast']:9.1f} "
          f"{rp['rms_phase_diff_fast_rad']:21.2e}")
    print(f"auto sideband {rp['auto_sideband_ky_kx']} (holospy's: {rp['sideband_ours_ky_kx']}), "
          f"auto aperture radius {rp['auto_aperture_radius_px']:.1f} px (holospy default {rp['aperture']['radius_px']:.1f})")
    for s in (s10, s100):
        print(f"series {s['frames']:>3} frames 512x512: peak traced memory {s['peak_traced_memory_mb']:.1f} MB, "
              f"max drift error {s['max_drift_error_px']:.2f} px, {s['wall_s_including_simulation']:.1f} s incl. simulation")
    print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
