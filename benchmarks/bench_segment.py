"""Movie segmentation: accuracy on held-out synthetic movies and speed on this machine.

Run: ``.venv/bin/python benchmarks/bench_segment.py``
(writes results/segment.json; see README_segment.md).

Held-out data: seeds, frame size (256 x 256; training used 160 and 224 px frames cropped
to 128 and 160), fixed doses (15, 60, 250 e/px inside the training range, 600 outside
it) and random geometries not drawn in training. Accuracy: IoU per class pooled over all
frames, the mean over the classes present in the truth, and the per-frame relative error
of the SEI thickness measured on the predicted masks against the simulator's truth (also
on the true masks: the floor set by the pixel grid). The network's SEI thickness is
refined from the edge profile (mltem.segment._refine) when a refiner trained for the
model is registered, as ``mltem segment`` does; the figure from the masks alone is
reported beside it (``all_in_range_masks_only``). The frames of a movie share its scene
and dose, so the pooled mean IoU and share of SEI frames within 10 % also get 95 %
intervals from resampling whole movies (``*_ci95_movies``). ``--model`` takes a registry name
or a card/ONNX path (to score a candidate before it replaces the shipped model). The
classical labeller
runs on the same frames for comparison. Speed: frames per second through onnxruntime
and torch eager for the same weights at 512 x 512 and 1024 x 1024, in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from mltem._physics import DETECTORS  # noqa: E402

DOSES = (15.0, 60.0, 250.0)
EXTRAPOLATION_DOSE = 600.0
SHARP_EDGE = {"ramp_px": 0.0}  # a step electrode edge (full mass-thickness at the boundary)
HELD_OUT_SEED = 7_000_000  # first seed of the held-out movies (8,000,000+: the selection set)


def held_out(n_liquid: int, n_open: int, frames: int, size: int, dose: float, seed0: int, electrode_edge=None,
             detector: str = "bf"):
    """The benchmark's movies; ``electrode_edge`` (liquid cells) replaces the drawn edge
    profile; ``detector="haadf"`` images the same scenes as dark-field STEM."""
    from mltem.simulate import simulate_movie

    out = []
    for i in range(n_liquid + n_open):
        kind = "liquid" if i < n_liquid else "open"
        rng = np.random.default_rng([seed0, i])
        px = float(rng.uniform(3.0, 7.0))
        edge = electrode_edge if kind == "liquid" else None
        out.append(simulate_movie(frames, (size, size), kind=kind, seed=seed0 + i, dose=dose, pixel_size_nm=px,
                                  electrode_edge=edge, detector=detector))
    return out


TIP_MATCH_PX = 8.0  # a measured dendrite tip this close to a true one is that dendrite ...
TIP_MATCH_REL = 0.2  # ... or this close relative to its length (a branch end beside the trunk's)
MIN_TRACK_FRAMES = 4  # frames a dendrite must be matched in for its growth velocity to be scored


def dendrite_errors(m, rows, drows) -> dict:
    """The lithium and dendrite measurements of one movie against the simulator's truth.

    Per frame: the relative error of the lithium area (frames with >= 100 px of lithium),
    the count difference (measured - true) and the relative error of the longest
    dendrite (frames with a true dendrite; none measured counts 100 %). Per true
    dendrite and frame: the measured dendrite whose tip is nearest its tip (within
    ``TIP_MATCH_PX`` or ``TIP_MATCH_REL`` of its length, each measured one used once)
    and the relative error of its length; measured dendrites left over are false ones.
    Per true dendrite matched in at least ``MIN_TRACK_FRAMES`` frames: the growth
    velocity of the measured track it matched most often
    (:func:`mltem.segment.dendrite_tracks`, what ``tracks.csv`` reports) against the
    true slope of length against time over that track's frames (dendrites whose true
    length grows by less than 2 px are left out: no velocity to speak of; a track
    shorter than ``MIN_TRACK_FRAMES`` frames there gives none).
    """
    from mltem.segment import dendrite_tracks

    px = m.pixel_size_nm

    out = {"area_rel": [], "count_diff": [], "longest_rel": [], "length_rel": [], "found": 0, "true_n": 0,
           "false_n": 0, "velocity_rel": [], "velocity_true_n": 0}
    by_frame = [[] for _ in rows]
    for d in drows:
        by_frame[d["frame"]].append(d)
    matched = {}  # true dendrite -> the measured tracks it was matched to, one per frame
    for t, r in enumerate(rows):
        ta = m.lithium_area_nm2[t]
        if ta >= 100 * px * px:
            out["area_rel"].append(abs(r["lithium_area_nm2"] - ta) / ta)
        out["count_diff"].append(int(r["dendrite_count"]) - int(m.dendrite_count[t]))
        if m.longest_dendrite_nm[t] > 0:
            out["longest_rel"].append(abs(r["longest_dendrite_nm"] - m.longest_dendrite_nm[t]) / m.longest_dendrite_nm[t])
        lengths = m.dendrite_lengths_nm[t]
        true_tips = m.dendrite_tips[t]
        meas = by_frame[t]
        out["true_n"] += len(lengths)
        used, done = set(), set()
        if len(lengths) and meas:
            mt = np.array([[d["tip_y_nm"], d["tip_x_nm"]] for d in meas]) / px
            dist = np.hypot(true_tips[:, None, 0] - mt[None, :, 0], true_tips[:, None, 1] - mt[None, :, 1])
            keys = list(lengths)
            tol = np.maximum(TIP_MATCH_PX, TIP_MATCH_REL * np.array([lengths[k] for k in keys]) / px)
            for flat in np.argsort(dist / tol[:, None], axis=None):
                i, j = divmod(int(flat), dist.shape[1])
                if dist[i, j] > tol[i]:
                    break
                if j in used or i in done:
                    continue
                used.add(j)
                done.add(i)
                L_true, L_meas = lengths[keys[i]], meas[j]["length_nm"]
                out["length_rel"].append(abs(L_meas - L_true) / L_true)
                out["found"] += 1
                matched.setdefault(keys[i], []).append((t, meas[j]["track"]))
        out["false_n"] += len(meas) - len(used)
    # growth velocity: each true dendrite against the measured track it matched most often
    # (tracks.csv of mltem segment), over that track's growth frames where the truth has it
    # (a track runs over consecutive frames: measure_movie links a frame to the one before)
    tracks = {r["track"]: r for r in dendrite_tracks(drows)}
    for k, pairs in matched.items():
        grown = np.ptp([m.dendrite_lengths_nm[t][k] for t, _ in pairs])
        if len(pairs) < MIN_TRACK_FRAMES or grown < 2 * px:
            continue
        out["velocity_true_n"] += 1  # a dendrite followed, growing: it should get a velocity
        ids = [tr for _, tr in pairs]
        tr = max(set(ids), key=ids.count)
        first = tracks[tr]["first_frame"]
        ts = [t for t in range(first, first + tracks[tr]["growth_frames"]) if k in m.dendrite_lengths_nm[t]]
        lt = np.array([m.dendrite_lengths_nm[t][k] for t in ts])
        v = tracks[tr]["growth_velocity_nm_s"]
        if len(ts) < MIN_TRACK_FRAMES or not np.isfinite(v) or np.ptp(lt) < 2 * px:
            continue
        vt = np.polyfit(np.array(ts) * m.frame_time_s, lt, 1)[0]
        out["velocity_rel"].append(abs(v - vt) / abs(vt))
    return out


def dendrite_summary(acc: dict) -> dict:
    """Figures from the pooled :func:`dendrite_errors` of a set of movies."""
    def q(v, p):
        return round(float(np.percentile(v, p)), 4) if len(v) else None

    cd = np.array(acc["count_diff"])
    return {
        "lithium_area_rel_error_median": q(acc["area_rel"], 50), "lithium_area_rel_error_p90": q(acc["area_rel"], 90),
        "lithium_area_frames": len(acc["area_rel"]),
        "dendrite_count_exact_frames": round(float((cd == 0).mean()), 4),
        "dendrite_count_mean_abs_error": round(float(np.abs(cd).mean()), 4),
        "dendrite_count_mean_error": round(float(cd.mean()), 4),
        "longest_dendrite_rel_error_median": q(acc["longest_rel"], 50),
        "longest_dendrite_rel_error_p90": q(acc["longest_rel"], 90),
        "longest_dendrite_frames_within_10pct": round(float((np.array(acc["longest_rel"]) <= 0.10).mean()), 4)
        if acc["longest_rel"] else None,
        "longest_dendrite_frames": len(acc["longest_rel"]),
        "dendrites_true": acc["true_n"],
        "dendrites_found": round(acc["found"] / acc["true_n"], 4) if acc["true_n"] else None,
        "dendrites_false_per_frame": round(acc["false_n"] / len(cd), 4),
        "dendrite_length_rel_error_median": q(acc["length_rel"], 50),
        "dendrite_length_rel_error_p90": q(acc["length_rel"], 90),
        "growth_velocity_rel_error_median": q(acc["velocity_rel"], 50),
        "growth_velocity_rel_error_p90": q(acc["velocity_rel"], 90),
        "growth_velocity_dendrites": len(acc["velocity_rel"]),
        "growth_velocity_dendrites_followed": acc["velocity_true_n"],
    }


def positive_int(text: str) -> int:
    """argparse type of ``--scale``: an integer >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def movie_counts(quick: bool, scale: int = 1) -> tuple[int, int, int]:
    """Liquid cells, open cells per dose and frames per movie of the held-out set
    (``--quick``: a smoke run; ``--scale``: that many times the movies)."""
    nl, no, frames = (3, 1, 6) if quick else (9, 3, 12)
    return nl * scale, no * scale, frames


def results_path(name: str, detector: str = "bf", scale: int = 1) -> Path:
    """Default figures file: ``results/NAME[_haadf][_xN].json``."""
    return HERE / "results" / f"{name}{'' if detector == 'bf' else '_' + detector}{'' if scale == 1 else f'_x{scale}'}.json"


def write_results(path, result: dict) -> None:
    """The figures as JSON, written atomically (:func:`mltem.io.atomic_write`)."""
    from mltem.io import atomic_write

    path = Path(path)
    path.parent.mkdir(exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")


BOOTSTRAP_DRAWS = 2000


def movie_bootstrap(per_movie, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """95 % intervals of the mean IoU and of the share of SEI frames within 10 %, from
    resampling whole movies (the frames of a movie share its scene, dose and the
    network's offsets there, so they are not independent samples).

    ``per_movie`` holds, per movie, its (5,) intersections, unions and true pixels per
    class and its SEI frames within 10 % and SEI frames.
    """
    if len(per_movie) < 2:
        return {}
    inter, union, truth = (np.array([r[k] for r in per_movie]) for k in range(3))
    ok, frames = (np.array([r[k] for r in per_movie], float) for k in (3, 4))
    pick = np.random.default_rng(seed).integers(0, len(per_movie), (draws, len(per_movie)))
    counts = np.stack([np.bincount(p, minlength=len(per_movie)) for p in pick]).astype(float)  # (draws, movies)
    i, u, t = counts @ inter, counts @ union, counts @ truth
    with np.errstate(invalid="ignore", divide="ignore"):
        miou = np.nanmean(np.where(t > 0, i / np.maximum(u, 1), np.nan), axis=1)
        share = (counts @ ok) / (counts @ frames)

    def ci(v):
        v = v[np.isfinite(v)]
        return [round(float(q), 4) for q in np.percentile(v, [2.5, 97.5])] if len(v) else None

    return {"mean_iou_ci95_movies": ci(miou), "sei_frames_within_10pct_ci95_movies": ci(share)}


def evaluate(movies, predict, refiner=None):
    """IoU per class pooled over all frames of ``movies`` and SEI thickness errors.

    With a ``refiner`` (:class:`mltem.segment.SeiRefiner`), ``predict`` returns the masks
    and the SEI probability and the SEI thickness is the refined one, as ``mltem segment``
    reports it; without, the thickness measured on the masks.

    A class absent from the truth of every frame here (e.g. bubbles in the open cell)
    has no IoU (NaN, left out of the mean); its false positives still lower the IoU of
    the classes they were taken from. ``predict=None`` scores the true masks themselves
    (the floor of the SEI thickness error set by the pixel grid).
    """
    from mltem.segment import edge_profiles, measure_movie, refine_sei_rows

    sei_err, sei_err_s, bound_ok, bound_rel = [], [], [], []
    per_movie = []  # (inter, union, truth, SEI frames within 10 %, SEI frames) of each movie
    dend = {}
    t = t_refine = 0.0
    n = 0
    for m in movies:
        t0 = time.perf_counter()
        pred = m.masks if predict is None else predict(m.frames)
        t += predict.seconds(m.frames) if hasattr(predict, "seconds") else time.perf_counter() - t0
        if isinstance(pred, tuple):
            pred, psei = pred
        n += len(m.frames)
        mi, mu, mt = np.zeros(5), np.zeros(5), np.zeros(5)
        for c in range(5):
            p, q = pred == c, m.masks == c
            mi[c], mu[c], mt[c] = np.count_nonzero(p & q), np.count_nonzero(p | q), np.count_nonzero(q)
        rows, drows = measure_movie(pred, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
        for key, v in dendrite_errors(m, rows, drows).items():
            dend[key] = dend.get(key, [] if isinstance(v, list) else 0) + v
        if refiner is not None:
            t0 = time.perf_counter()
            refine_sei_rows(rows, edge_profiles(m.frames, pred, psei), refiner, pixel_size_nm=m.pixel_size_nm)
            t_refine += time.perf_counter() - t0
        ok = np.isfinite(m.sei_thickness_nm) & (m.sei_thickness_nm > 0)
        truth_nm = m.sei_thickness_nm[ok]
        for key, acc in (("sei_thickness_nm", sei_err), ("sei_thickness_smoothed_nm", sei_err_s)):
            got = np.array([r[key] for r in rows], float)[ok]
            rel = np.nan_to_num(np.abs(got - truth_nm) / truth_nm, nan=1.0)  # a missed SEI: 100 %
            acc += rel.tolist()
            if key == "sei_thickness_nm":
                per_movie.append((mi, mu, mt, int((rel <= 0.10).sum()), len(rel)))
        if refiner is not None and refiner.error_bound is not None:
            got = np.array([r["sei_thickness_nm"] for r in rows], float)[ok]
            bound = np.array([r["sei_thickness_err_nm"] for r in rows], float)[ok]
            miss = ~(np.isfinite(got) & (got > 0))  # no SEI measured: no bound, counted as uncovered
            bound_ok += list(~miss & (np.abs(got - truth_nm) <= np.nan_to_num(bound)))
            bound_rel += list(np.where(miss, np.inf, bound / np.where(miss, 1.0, got)))  # inf: never "within 10 %"
    inter, union, truth = (np.sum([r[k] for r in per_movie], axis=0) for k in range(3))
    iou = np.where(truth > 0, inter / np.maximum(union, 1), np.nan)
    e, es = np.array(sei_err), np.array(sei_err_s)
    bounded = {}
    if bound_ok:
        # the refiner's 90 % error bound: how often the truth lies within it, and the
        # frames whose bound is at most 10 % of the value (reported as such by mltem
        # segment) with the share of them that truly are within 10 %
        sure = np.array(bound_rel) <= 0.10
        bounded = {"sei_bound_coverage": round(float(np.mean(bound_ok)), 4),
                   "sei_frames_bound_within_10pct": round(float(sure.mean()), 4),
                   "sei_within_10pct_where_bound_within_10pct": round(float((e[sure] <= 0.10).mean()), 4) if sure.any() else None,
                   "sei_within_10pct_where_bound_above_10pct": round(float((e[~sure] <= 0.10).mean()), 4) if (~sure).any() else None}
    return {
        "iou": {k: (round(float(v), 4) if np.isfinite(v) else None)
                for k, v in zip(("electrolyte", "electrode", "SEI", "lithium", "bubble"), iou)},
        "mean_iou": round(float(np.nanmean(iou)), 4),
        "classes_in_mean": int(np.isfinite(iou).sum()),
        "sei_rel_error_median": round(float(np.median(e)), 4),
        "sei_rel_error_p90": round(float(np.percentile(e, 90)), 4),
        "sei_rel_error_max": round(float(e.max()), 4),
        "sei_rel_error_mean": round(float(e.mean()), 4),
        "sei_frames_within_10pct": round(float((e <= 0.10).mean()), 4),
        "sei_frames": int(len(e)),
        **movie_bootstrap(per_movie),
        **bounded,
        # the 3-frame running median of the per-frame thickness (metrics column
        # sei_thickness_smoothed_nm); the raw per-frame value above is the headline figure
        "sei_smoothed_rel_error_median": round(float(np.median(es)), 4),
        "sei_smoothed_rel_error_p90": round(float(np.percentile(es, 90)), 4),
        "sei_smoothed_rel_error_max": round(float(es.max()), 4),
        "sei_smoothed_frames_within_10pct": round(float((es <= 0.10).mean()), 4),
        **dendrite_summary(dend),
        "frames": n,
        "fps": round(n / t, 2) if predict is not None else None,
        "sei_refined": refiner is not None,
        "refine_ms_per_frame": round(1000 * t_refine / n, 2) if refiner is not None else None,
    }


def cached(predict):
    """``predict`` remembering its masks per frames array (each movie is predicted once)."""
    memo = {}

    def run(frames):
        key = id(frames)
        if key not in memo:
            t0 = time.perf_counter()
            pred = predict(frames)
            memo[key] = (frames, pred, time.perf_counter() - t0)  # ``frames`` kept alive: its id stays unique
        return memo[key][1]

    run.seconds = lambda frames: memo[id(frames)][2]  # the time of the first (real) call
    return run


def conv_gflops(net, shape) -> float:
    """Multiply-adds x 2 of the convolutions for one input of ``shape`` (C, H, W)."""
    import torch

    total = [0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        cin = mod.in_channels // mod.groups
        total[0] += 2 * out.numel() * cin * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        net(torch.zeros(1, *shape))
    for h in hs:
        h.remove()
    return total[0] / 1e9


def speed(card, threads: int, repeat: int, refiner=None, detector: str = "bf"):
    """Frames per second at 512 x 512 and 1024 x 1024: the network alone (torch eager; onnxruntime
    at the card's graph optimisation level and at onnxruntime's default, "all"), then what
    ``mltem segment`` does per frame on a simulated movie: the masks (normalisation,
    neighbour frames, network, class-weight correction, temporal filter, speck removal),
    the same with the SEI probability the refiner reads, and the measurement (metrics,
    dendrites, edge profiles and SEI refinement); the movie is imaged by ``detector``."""
    import dataclasses

    import torch

    from mltem.infer import OnnxModel
    from mltem.segment import edge_profiles, measure_movie, refine_sei_rows, segment_frames
    from mltem.simulate import simulate_movie
    from mltem.training import load_checkpoint
    from mltem.training._run import build_from_checkpoint

    ckpt_path = ROOT / "runs" / "segment" / "model.ckpt"
    if ckpt_path.is_file():
        net = build_from_checkpoint(load_checkpoint(ckpt_path))
    else:  # same architecture from the card's recipe (speed does not depend on the weights)
        from mltem.nets import create_net

        cfg = dict(card.recipe["config"]["net"])
        net = create_net(cfg.pop("name"), **cfg).eval()
    torch.set_num_threads(threads)
    m = OnnxModel(card, threads=threads)
    m_all = OnnxModel(dataclasses.replace(card, extra={**card.extra, "onnxruntime_graph_optimization": "all"}),
                      threads=threads)
    rows = []
    rng = np.random.default_rng(0)

    def t_of(fn, r):
        fn()
        t0 = time.perf_counter()
        for _ in range(r):
            fn()
        return (time.perf_counter() - t0) / r

    for n in (512, 1024):
        x = rng.standard_normal((1, 3, n, n)).astype(np.float32)
        r = repeat if n == 512 else max(2, repeat // 3)
        with torch.no_grad():
            tt = t_of(lambda: net(torch.from_numpy(x)), r)
        to = t_of(lambda: m(x), r)
        ta = t_of(lambda: m_all(x), r)
        nf = 24 if n == 512 else 8
        mv = simulate_movie(nf, (n, n), seed=HELD_OUT_SEED - 1, dose=60.0, pixel_size_nm=4.0, detector=detector)
        tm = t_of(lambda: segment_frames(mv.frames, model=m, tile=n), 1) / nf
        tq = t_of(lambda: segment_frames(mv.frames, model=m, tile=n, sei_prob=True), 1) / nf
        masks, psei = segment_frames(mv.frames, model=m, tile=n, sei_prob=True)

        def measure():
            rows_, _ = measure_movie(masks, pixel_size_nm=4.0, frame_time_s=0.5)
            if refiner is not None:
                refine_sei_rows(rows_, edge_profiles(mv.frames, masks, psei), refiner, pixel_size_nm=4.0)

        tmeas = t_of(measure, 1) / nf
        rows.append({"frame": f"{n}x{n}", "gflop_per_frame": round(conv_gflops(net, (3, n, n)), 2),
                     "torch_eager_fps": round(1 / tt, 2), "onnx_fps": round(1 / to, 2),
                     "onnx_fps_level_all": round(1 / ta, 2), "onnx_speedup": round(tt / to, 2),
                     "masks_fps": round(1 / tm, 2), "masks_sei_probability_fps": round(1 / tq, 2),
                     "measure_ms_per_frame": round(1e3 * tmeas, 1), "segment_end_to_end_fps": round(1 / (tq + tmeas), 2)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer movies (a smoke run)")
    ap.add_argument("--model", default=None,
                    help="segmentation model (default: segment-unet, segment-unet-haadf with --detector haadf)")
    ap.add_argument("--json", default=None,
                    help="where to write the figures (default results/segment.json, results/segment_haadf.json with "
                         "--detector haadf; score a candidate into another file)")
    ap.add_argument("--detector", choices=DETECTORS, default="bf",
                    help="image the held-out scenes as bright-field TEM (bf) or annular dark-field STEM (haadf; "
                         "the same scenes and masks)")
    ap.add_argument("--seed-base", type=int, default=HELD_OUT_SEED,
                    help=f"first seed of the movies ({HELD_OUT_SEED}: the held-out set; 8000000: the set candidates "
                         "are selected on, so that the held-out figures stay unseen)")
    ap.add_argument("--scale", type=positive_int, default=1,
                    help="movies per dose times this (9 liquid + 3 open cells each; another, larger set drawn the "
                         "same way, for narrower intervals; written to results/segment_xN.json unless --json)")
    ap.add_argument("--no-refine", action="store_true",
                    help="score the SEI thickness measured on the masks only (no edge-profile refinement)")
    ap.add_argument("--update-card", action="store_true",
                    help="write the held-out figures into the model card's metrics (the card is not hashed)")
    args = ap.parse_args()
    args.json = args.json or str(results_path("segment", args.detector, args.scale))
    if args.update_card and (args.seed_base != HELD_OUT_SEED or args.scale != 1):
        ap.error(f"--update-card takes the held-out figures only (--seed-base {HELD_OUT_SEED}, --scale 1)")
    os.environ.setdefault("MLTEM_PROGRESS", "0")
    from mltem.infer import default_threads
    from mltem.registry import find_model
    from mltem.segment import DETECTOR_MODELS, classical_labels, load_sei_refiner, segment_frames

    card = find_model(args.model or DETECTOR_MODELS[args.detector], task="segment")
    refiner = None if args.no_refine else load_sei_refiner(card)
    if refiner is None and not args.no_refine:
        print(f"note: no SEI refiner trained for {card.name} ({card.sha256[:12]}...): thickness from the masks only")
    threads = default_threads() or os.cpu_count() or 1
    nl, no, frames = movie_counts(args.quick, args.scale)
    result = {"model": card.name, "sha256": card.sha256, "threads": threads,
              "sei_refiner": None if refiner is None else {"name": refiner.card.name, "sha256": refiner.card.sha256},
              "held_out": {"liquid_movies": nl, "open_movies": no, "frames_per_movie": frames, "size": 256,
                           "seeds": f"{args.seed_base} + 1000 * dose index + i", "doses": list(DOSES),
                           "detector": args.detector},
              "network": {}, "classical": {}}
    # speed first, in a fresh process: after the accuracy runs (hundreds of movies and
    # their logits in memory) torch eager ran 3-4x slower in two runs of 2026-12-03
    result["speed"] = speed(card, threads, 3 if args.quick else 10, refiner, args.detector)
    net_all = []
    net_pred = cached(lambda f: segment_frames(f, model=card.path, tile=256, smooth_frames=3, sei_prob=True))
    cls_pred = cached(lambda f: classical_labels(f, detector=args.detector))
    for k, dose in enumerate((*DOSES, EXTRAPOLATION_DOSE)):
        movies = held_out(nl, no, frames, 256, dose, args.seed_base + 1000 * k, detector=args.detector)
        net = evaluate(movies, net_pred, refiner)
        cls = evaluate(movies, cls_pred)
        key = f"dose_{dose:g}"
        result["network"][key] = net
        result["classical"][key] = cls
        if dose != EXTRAPOLATION_DOSE:
            net_all.append(movies)
        print(f"dose {dose:6g}: network mean IoU {net['mean_iou']:.3f}  SEI err median {net['sei_rel_error_median']:.3f} "
              f"p90 {net['sei_rel_error_p90']:.3f} max {net['sei_rel_error_max']:.3f} within 10 % "
              f"{net['sei_frames_within_10pct']:.3f} (3-frame median {net['sei_smoothed_frames_within_10pct']:.3f}) | "
              f"classical mean IoU {cls['mean_iou']:.3f}", flush=True)
    movies = [m for ms in net_all for m in ms]
    result["network"]["all_in_range"] = evaluate(movies, net_pred, refiner)
    if refiner is not None:
        result["network"]["all_in_range_masks_only"] = evaluate(movies, net_pred)
    result["truth_masks_all_in_range"] = evaluate(movies, None)
    result["classical"]["all_in_range"] = evaluate(movies, cls_pred)
    for kind in ("liquid", "open"):
        sub = [m for m in movies if m.kind == kind]
        result["network"][f"all_in_range_{kind}"] = evaluate(sub, net_pred, refiner)
        result["classical"][f"all_in_range_{kind}"] = evaluate(sub, cls_pred)
    # the same liquid cells with a step edge (a patterned film electrode; the generator draws
    # a wedge unless told otherwise, and the shipped network was trained on wedges only)
    sharp = [m for k, dose in enumerate(DOSES)
             for m in held_out(nl, 0, frames, 256, dose, args.seed_base + 1000 * k, electrode_edge=SHARP_EDGE,
                               detector=args.detector)]
    result["network"]["sharp_edge_liquid"] = evaluate(sharp, net_pred, refiner)
    if refiner is not None:
        result["network"]["sharp_edge_liquid_masks_only"] = evaluate(sharp, net_pred)
    result["truth_masks_sharp_edge_liquid"] = evaluate(sharp, None)
    write_results(args.json, result)
    a, c = result["network"]["all_in_range"], result["classical"]["all_in_range"]
    if args.update_card:
        from mltem.registry import read_card

        cpath = card.path.with_suffix(".json")
        full = read_card(cpath)
        full.metrics.update({
            "heldout_mean_iou": a["mean_iou"], "heldout_iou": a["iou"],
            "heldout_sei_rel_error_median": a["sei_rel_error_median"],
            "heldout_sei_rel_error_p90": a["sei_rel_error_p90"],
            "heldout_sei_frames_within_10pct": a["sei_frames_within_10pct"],
            "heldout_sei_smoothed_frames_within_10pct": a["sei_smoothed_frames_within_10pct"],
            "heldout_sei_frames_within_10pct_truth_masks": result["truth_masks_all_in_range"]["sei_frames_within_10pct"],
            "heldout_sei_refiner": result["sei_refiner"],
            "heldout_sei_frames_within_10pct_masks_only":
                result["network"].get("all_in_range_masks_only", a)["sei_frames_within_10pct"],
            **{f"heldout_{k}": a[k] for k in ("sei_bound_coverage", "sei_frames_bound_within_10pct",
                                              "sei_within_10pct_where_bound_within_10pct",
                                              "mean_iou_ci95_movies", "sei_frames_within_10pct_ci95_movies") if k in a},
            "heldout_mean_iou_liquid": result["network"]["all_in_range_liquid"]["mean_iou"],
            "heldout_mean_iou_open": result["network"]["all_in_range_open"]["mean_iou"],
            "gflop_per_512x512_frame": result["speed"][0]["gflop_per_frame"],
            "onnx_fps_512x512_2_threads": result["speed"][0]["onnx_fps"],
            "benchmark": f"benchmarks/bench_segment.py{' --detector ' + args.detector if args.detector != 'bf' else ''} "
                         f"(results/{Path(args.json).name})",
            "heldout_detector": args.detector,
        })
        full.write(cpath)
    print("\nheld-out, doses 15/60/250 e/px pooled")
    print(f"{'':18} {'mean IoU':>9} " + " ".join(f"{k:>11}" for k in a["iou"]) + f" {'SEI err med':>11} {'<=10 %':>7}")
    rows = [("network", a), ("classical", c)]
    rows += [(f"{n} {k}", result[n][f"all_in_range_{k}"]) for k in ("liquid", "open") for n in ("network", "classical")]
    for name, r in rows:
        print(f"{name:18} {r['mean_iou']:>9.3f} " + " ".join(f"{v:>11.3f}" if v is not None else f"{'-':>11}" for v in r["iou"].values())
              + f" {r['sei_rel_error_median']:>11.3f} {r['sei_frames_within_10pct']:>7.2f}")
    o = result["truth_masks_all_in_range"]
    print(f"SEI thickness on the true masks (measurement floor): median {o['sei_rel_error_median']:.3f}, "
          f"max {o['sei_rel_error_max']:.3f}, within 10 % {o['sei_frames_within_10pct']:.2f}")
    names = [("network", "all_in_range"), ("network", "all_in_range_masks_only"), ("classical", "all_in_range")]
    for name, key in names:
        if key not in result[name]:
            continue
        r = result[name][key]
        label = name + (" (masks only, no refinement)" if key.endswith("masks_only") else
                        " (refined)" if r["sei_refined"] else "")
        print(f"SEI thickness error, {label}: median {r['sei_rel_error_median']:.3f}, p90 {r['sei_rel_error_p90']:.3f}, "
              f"max {r['sei_rel_error_max']:.3f}, within 10 % {r['sei_frames_within_10pct']:.3f} of {r['sei_frames']} frames "
              f"(95 % over movies {r.get('sei_frames_within_10pct_ci95_movies')}); "
              f"3-frame median: within 10 % {r['sei_smoothed_frames_within_10pct']:.3f}, p90 {r['sei_smoothed_rel_error_p90']:.3f}")
    if "sei_bound_coverage" in a:
        print(f"SEI 90 % error bound: covers the truth in {a['sei_bound_coverage']:.3f} of frames; "
              f"{a['sei_frames_bound_within_10pct']:.3f} of frames have a bound <= 10 %, of them "
              f"{a['sei_within_10pct_where_bound_within_10pct']} are within 10 % (the others: "
              f"{a['sei_within_10pct_where_bound_above_10pct']})")
    for k in ("liquid", "open"):
        r = result["network"][f"all_in_range_{k}"]
        print(f"SEI thickness error, network, {k}: median {r['sei_rel_error_median']:.3f}, p90 {r['sei_rel_error_p90']:.3f}, "
              f"max {r['sei_rel_error_max']:.3f}, within 10 % {r['sei_frames_within_10pct']:.3f} of {r['sei_frames']} frames")
    for k in ("sharp_edge_liquid", "sharp_edge_liquid_masks_only"):
        if k in result["network"]:
            r = result["network"][k]
            label = "refined" if r["sei_refined"] else "masks only"
            print(f"liquid cells with a step electrode edge, {label}: mean IoU "
                  f"{r['mean_iou']:.3f}, SEI err median {r['sei_rel_error_median']:.3f}, p90 {r['sei_rel_error_p90']:.3f}, "
                  f"within 10 % {r['sei_frames_within_10pct']:.3f} of {r['sei_frames']} frames")
    print("\nlithium and dendrites (held-out, 15/60/250 e/px), measured against the simulator's truth")
    print(f"{'':26} {'Li area err':>11} {'count exact':>11} {'count err':>9} {'found':>6} {'false/frame':>11} "
          f"{'length err':>10} {'longest err':>11} {'growth v err':>12}")
    def f(v):
        return f"{v:.3f}" if v is not None else "-"

    for name, r in (("true masks", result["truth_masks_all_in_range"]), ("network", a), ("classical", c),
                    ("network, liquid", result["network"]["all_in_range_liquid"]),
                    ("network, open", result["network"]["all_in_range_open"])):
        print(f"{name:26} {f(r['lithium_area_rel_error_median']):>11} {f(r['dendrite_count_exact_frames']):>11} "
              f"{r['dendrite_count_mean_error']:>+9.2f} {f(r['dendrites_found']):>6} {r['dendrites_false_per_frame']:>11.2f} "
              f"{f(r['dendrite_length_rel_error_median']):>10} {f(r['longest_dendrite_rel_error_median']):>11} "
              f"{f(r['growth_velocity_rel_error_median']):>12}  ({r['growth_velocity_dendrites']} of "
              f"{r['growth_velocity_dendrites_followed']} dendrites)")
    print(f"\n{'frame':>10} {'GFLOP':>6} {'torch fps':>10} {'onnx fps':>9} {'(all)':>6} {'speed-up':>9} {'masks fps':>10} "
          f"{'+SEI p':>7} {'measure ms':>10} {'end-to-end fps':>14}")
    for r in result["speed"]:
        print(f"{r['frame']:>10} {r['gflop_per_frame']:>6} {r['torch_eager_fps']:>10} {r['onnx_fps']:>9} "
              f"{r['onnx_fps_level_all']:>6} {r['onnx_speedup']:>9} {r['masks_fps']:>10} {r['masks_sei_probability_fps']:>7} "
              f"{r['measure_ms_per_frame']:>10} {r['segment_end_to_end_fps']:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
