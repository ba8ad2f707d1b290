r"""Train the SEI-thickness refiner (mltem.segment._refine) for a segmentation model.

Synthetic 12-frame movies (256 x 256 px; 30 % open cells; 2.5-8 nm/px; dose log-uniform
in 10-700 e/px; 30 % of the liquid cells with a faint electrode edge, as in training the
network, and ``--sharp-edge-fraction`` of the others with a step edge) are segmented by
the model; the edge profiles and the mask-based SEI thickness of every frame are the
inputs, the thickness minus the simulator's truth (px) the target. ``--step-edges
SEED:A:B`` adds the liquid cells of those movies drawn again with a step electrode edge
(a patterned film), where the network errs the other way. HistGradientBoostingRegressors
(``--bag`` of them averaged) are fitted: without step-edge movies one correction; with
them a wedge correction (the other movies), a step-edge correction (all movies) and a
classifier of the edge shape that weights the two. A quantile regressor, fitted to the
90 % quantile of the absolute error left by the out-of-fold corrections (folds by
movie), gives each frame its error bound. All are written as plain arrays
(``<name>.npz``) with the card (``<name>.json``: sha256, the segmentation model's sha256,
the recipe, the out-of-fold errors and the bound's coverage).

Run (the shipped refiner: movies 0-1799 of seed 556 and 600-1799 of seed 555, and the
1443 of them with a liquid cell drawn again with a step edge)::

    .venv/bin/python train/sei_refine.py --seed 556 --movies 0:1800 --seed 555 --movies 600:1800 \
        --step-edges 556:0:1800 --step-edges 555:600:1800 --bag 5 --out models

About 0.65 s per movie on 2 cores (50 min for the 4443 movies), then 10 min of fitting.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The synthetic movies (mltem.segment._task.synthetic_movie): drawn like the network's
#: training data, at the benchmark's frame size and length.
MOVIES = dict(frames=12, size=256, open_fraction=0.3, pixel_size_nm=(2.5, 8.0), dose=(10.0, 700.0),
              faint_edge_fraction=0.3, faint_edge_ratio=(0.6, 1.5))
GBM = dict(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0)


def movie_example(seed: int, i: int, model, movies: dict = MOVIES) -> dict:
    """Profiles, mask-based and true SEI thickness (px) of synthetic movie ``i`` of ``seed``,
    and whether it was drawn with a step electrode edge (``step``)."""
    from mltem.segment import edge_profiles, measure_movie, segment_frames
    from mltem.segment._task import movie_draws, synthetic_movie

    mv = synthetic_movie(seed, i, **movies)
    px = mv.pixel_size_nm
    labels, psei = segment_frames(mv.frames, model=model, tile=256, smooth_frames=3, sei_prob=True)
    rows, _ = measure_movie(labels, pixel_size_nm=px, frame_time_s=mv.frame_time_s)
    got = np.array([r["sei_thickness_nm"] for r in rows]) / px
    return {"profiles": edge_profiles(mv.frames, labels, psei), "got": got, "truth": mv.sei_thickness_nm / px,
            "kind": mv.kind, "dose": mv.params["dose"], "px": px,
            "step": movie_draws(seed, i, **movies)["electrode_edge"] is not None}


def step_edge_movies(seed: int, lo: int, hi: int, movies: dict = MOVIES) -> tuple[dict, list]:
    """The movie settings and indices in ``lo``-``hi`` of ``seed`` that draw a step
    electrode edge when every liquid cell without a faint edge gets one: the same cells as
    in ``movies``, with a patterned film's edge instead of the wedge."""
    from mltem.segment._task import movie_draws

    step = {**movies, "sharp_edge_fraction": 1.0}
    return step, [i for i in range(lo, hi) if movie_draws(seed, i, **step)["electrode_edge"] is not None]


def design(examples):
    """Frame-level inputs, targets and movie groups (indices into ``examples``) of the
    frames with a true SEI and a measured one."""
    from mltem.segment._refine import refine_features

    xs, ys, gs = [], [], []
    for j, e in enumerate(examples):
        ok = np.isfinite(e["truth"]) & (e["truth"] > 0) & np.isfinite(e["got"])
        if not ok.any():
            continue
        x = refine_features(e["profiles"], e["got"])
        xs.append(x[ok])
        ys.append((e["got"] - e["truth"])[ok])
        gs += [j] * int(ok.sum())
    return np.concatenate(xs), np.concatenate(ys), np.array(gs)


#: True SEI thickness bins, px, of the out-of-fold figures in the card.
THICKNESS_BINS_PX = (0, 4, 6, 8, 12, 20, None)


#: The gate (with ``--step-edges``): a classifier of step against wedge electrode edges.
GATE = dict(max_iter=300, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20)


def fit_correction(x, y, step=None, *, bag: int = 1):
    """The correction as a :class:`SeiRefiner` and a function giving scikit-learn's own
    prediction of the same (the parity check).

    ``bag`` regressors (random states 0, 1, ...: each stops early on another validation
    split) are averaged. With ``step`` (bool per frame: a movie drawn with a step electrode
    edge) the frames without it train the wedge correction, all frames the step-edge
    correction, and a classifier of ``step`` the gate between them.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from mltem.segment._refine import SeiRefiner

    def bagged(xs, ys):
        ms = [HistGradientBoostingRegressor(**GBM, random_state=k).fit(xs, ys) for k in range(bag)]
        return SeiRefiner.mean([SeiRefiner.from_sklearn(m, x.shape[1]) for m in ms]), \
            (lambda z: np.mean([m.predict(z) for m in ms], 0))

    if step is None or not np.any(step):
        return bagged(x, y)
    step = np.asarray(step, bool)
    wedge, sk_wedge = bagged(x[~step], y[~step])
    both, sk_both = bagged(x, y)
    gate = HistGradientBoostingClassifier(**GATE, random_state=0).fit(x, step)

    def sk(z):
        p = gate.predict_proba(z)[:, 1]
        return (1 - p) * sk_wedge(z) + p * sk_both(z)

    return wedge.with_gate(SeiRefiner.from_sklearn(gate, x.shape[1]), both), sk


def fit(x, y, groups, *, step=None, bag: int = 1, folds: int = 5):
    """The refiner (:func:`fit_correction`) fitted on all frames, with its error bound
    (none with ``folds`` <= 1: the bound learns from out-of-fold errors), the out-of-fold
    residual sd (folds by movie; None with ``folds`` <= 1), the out-of-fold corrections
    (zeros with ``folds`` <= 1) and the largest difference from scikit-learn's prediction.

    The bound's target is the absolute error of the thickness corrected as
    :func:`mltem.segment.refine_sei_rows` does (the out-of-fold correction, clipped to
    half the mask-based value), its loss the :data:`BOUND_QUANTILE` quantile.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import GroupKFold

    from mltem.segment._refine import BOUND_QUANTILE, THICKNESS_FEATURE, SeiRefiner, clip_correction

    step = None if step is None else np.asarray(step, bool)
    oof = np.zeros_like(y)
    refiner, sk = fit_correction(x, y, step, bag=bag)
    parity = float(np.abs(refiner.predict(x) - sk(x)).max())
    if folds <= 1:
        return refiner, None, oof, parity
    for tr, te in GroupKFold(folds).split(x, y, groups):
        oof[te] = fit_correction(x[tr], y[tr], None if step is None else step[tr], bag=bag)[0].predict(x[te])
    err = np.abs(y - clip_correction(oof, x[:, THICKNESS_FEATURE]))
    bound = HistGradientBoostingRegressor(**GBM, loss="quantile", quantile=BOUND_QUANTILE, random_state=0).fit(x, err)
    refiner = refiner.with_bound(SeiRefiner.from_sklearn(bound, x.shape[1]))
    parity = max(parity, float(np.abs(refiner.error_bound.output(x) - bound.predict(x)).max()))
    return refiner, float(np.std(y - oof)), oof, parity


def oof_by_thickness(x, y, oof) -> dict:
    """Share of frames within 10 % of the truth after the out-of-fold correction (and on
    the masks alone), per bin of true thickness (:data:`THICKNESS_BINS_PX`)."""
    from mltem.segment._refine import THICKNESS_FEATURE, clip_correction

    got = x[:, THICKNESS_FEATURE]
    truth = got - y
    refined = got - clip_correction(oof, got)
    out = {}
    for lo, hi in zip(THICKNESS_BINS_PX[:-1], THICKNESS_BINS_PX[1:]):
        m = (truth >= lo) & (truth < (np.inf if hi is None else hi))
        if m.any():
            out[f"{lo}-{'' if hi is None else hi}px"] = {
                "frames": int(m.sum()),
                "within_10pct": round(float(np.mean(np.abs(refined[m] - truth[m]) <= 0.1 * truth[m])), 4),
                "within_10pct_masks_only": round(float(np.mean(np.abs(got[m] - truth[m]) <= 0.1 * truth[m])), 4)}
    return out


def write(refiner, out: Path, name: str, segment_card, recipe: dict, metrics: dict):
    """``<name>.npz`` and its card in ``out`` (both atomically)."""
    from mltem.io import atomic_write
    from mltem.registry import ModelCard, sha256_file

    out.mkdir(parents=True, exist_ok=True)
    p = out / f"{name}.npz"
    with atomic_write(p) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **refiner.arrays())
    card = ModelCard(
        name=name, task="segment-refine", file=p.name, sha256=sha256_file(p),
        inputs=[{"name": "features", "shape": ["frame", refiner.n_features], "dtype": "float64",
                 "normalisation": "mltem.segment._refine.refine_features (edge profiles pooled over 12 frames)"}],
        outputs=[{"name": "correction_px", "shape": ["frame"], "dtype": "float64"}]
        + ([{"name": "error_bound_px", "shape": ["frame"], "dtype": "float64"}] if refiner.error_bound is not None else []),
        recipe=recipe, metrics=metrics, opset=0,
        created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        extra={"segment_model": segment_card.name, "segment_model_sha256": segment_card.sha256,
               "format": "npz arrays of gradient-boosted tree ensembles, the correction and (bound_*) its error bound "
                         "(mltem.segment._refine.SeiRefiner)"},
    )
    card.write(out / f"{name}.json")
    return card


def parse_sets(ap, a) -> tuple[list, list]:
    """(seed, lo, hi) of the wedge sets (``--seed``/``--movies``) and of the step-edge sets."""
    if len(a.seed) != len(a.movies):
        ap.error("give one --movies a:b per --seed")
    try:
        main_sets = [(seed, *(int(v) for v in rng.split(":"))) for seed, rng in zip(a.seed, a.movies)]
        step_sets = [tuple(int(v) for v in s.split(":")) for s in a.step_edges]
    except ValueError:
        ap.error("--movies takes a:b and --step-edges seed:a:b (integers)")
    if any(len(t) != 3 or t[1] >= t[2] for t in main_sets + step_sets):
        ap.error("--movies takes a:b and --step-edges seed:a:b with a < b")
    return main_sets, step_sets


def train_and_write(examples, a, seg, t_data: float):
    """Fit the refiner on ``examples`` (their ``step`` flag marks step-edge movies; they
    took ``t_data`` s to make) and write it with its card; returns the card and its metrics."""
    from mltem.segment._refine import BOUND_QUANTILE, THICKNESS_FEATURE, clip_correction

    t0 = time.time()
    x, y, g = design(examples)
    step = np.array([bool(examples[j].get("step")) for j in g], bool)
    refiner, oof_sd, oof, parity = fit(x, y, g, step=step, bag=a.bag, folds=a.folds)
    extra = {}
    if refiner.error_bound is not None:
        err = np.abs(y - clip_correction(refiner.predict(x), x[:, THICKNESS_FEATURE]))
        extra = {"bound_quantile": BOUND_QUANTILE,
                 "bound_coverage_in_sample": round(float(np.mean(err <= refiner.bound(x))), 4),
                 "oof_by_true_thickness": oof_by_thickness(x, y, oof)}
        if step.any():
            extra["oof_by_true_thickness_wedge_edges"] = oof_by_thickness(x[~step], y[~step], oof[~step])
            extra["oof_by_true_thickness_step_edges"] = oof_by_thickness(x[step], y[step], oof[step])
    if refiner.gate is not None:
        p = refiner.step_probability(x)
        extra["gate_in_sample"] = {"wedge_called_step": round(float(np.mean(p[~step] > 0.5)), 4),
                                   "step_called_wedge": round(float(np.mean(p[step] <= 0.5)), 4)}
    recipe = {"seeds": a.seed, "movies": a.movies, "frames": int(len(y)), "n_movies": len(examples),
              "sharp_edge_fraction": a.sharp_edge_fraction, "haadf_fraction": a.haadf_fraction,
              "step_edges": a.step_edges, "step_edge_movies": int(sum(bool(e.get("step")) for e in examples)),
              "step_edge_frames": int(step.sum()), "bag": a.bag,
              "regressor": {"HistGradientBoostingRegressor": GBM},
              "gate": {"HistGradientBoostingClassifier": GATE} if refiner.gate is not None else None,
              "error_bound": {"HistGradientBoostingRegressor": {**GBM, "loss": "quantile", "quantile": BOUND_QUANTILE},
                              "target": "absolute error after the out-of-fold correction"}
              if refiner.error_bound is not None else None,
              "data_s": round(t_data, 1),
              "train_s": round(time.time() - t0, 1)}
    metrics = {"target_sd_px": round(float(y.std()), 4), "oof_residual_sd_px": None if oof_sd is None else round(oof_sd, 4),
               "parity_vs_sklearn_max": parity, **extra}
    card = write(refiner, a.out, a.name, seg.card, recipe, metrics)
    return card, metrics


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, action="append", required=True)
    ap.add_argument("--movies", action="append", required=True, help="a:b, one per --seed")
    ap.add_argument("--step-edges", action="append", default=[], metavar="SEED:A:B",
                    help="also the liquid cells of movies A-B of SEED drawn with a step electrode edge "
                         "(the others skipped); trains a gate and a step-edge correction beside the wedge one")
    ap.add_argument("--bag", type=int, default=1, help="regressors averaged per correction (another early-stopping split each)")
    ap.add_argument("--model", default="segment-unet", help="segmentation model (registry name or card)")
    ap.add_argument("--name", default="segment-sei-refine")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--sharp-edge-fraction", type=float, default=0.0,
                    help="fraction of the --seed movies' liquid cells drawn with a step electrode edge (shipped: 0)")
    ap.add_argument("--haadf-fraction", type=float, default=0.0,
                    help="fraction of the movies imaged as annular dark-field STEM (segment-sei-refine-haadf: 1; "
                         "the same scenes as in bright field)")
    return ap


def main(argv=None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    main_sets, step_sets = parse_sets(ap, a)
    for opt in ("sharp_edge_fraction", "haadf_fraction"):
        if not 0.0 <= getattr(a, opt) <= 1.0:
            ap.error(f"--{opt.replace('_', '-')} must lie in 0-1")
    if a.bag < 1:
        ap.error("--bag must be at least 1")
    os.environ.setdefault("MLTEM_PROGRESS", "0")
    from mltem.segment import load_segment_model

    # 0 draws exactly MOVIES' movies
    movies = {**MOVIES, "sharp_edge_fraction": a.sharp_edge_fraction, "haadf_fraction": a.haadf_fraction}
    seg = load_segment_model(a.model)
    t0 = time.time()
    # (a step edge drawn into the main set by --sharp-edge-fraction counts as one for the gate too)
    todo = [(seed, i, movies) for seed, lo, hi in main_sets for i in range(lo, hi)]
    for seed, lo, hi in step_sets:
        step, idx = step_edge_movies(seed, lo, hi, movies)
        todo += [(seed, i, step) for i in idx]
    examples = []
    for seed, i, mv in todo:
        examples.append(movie_example(seed, i, seg, mv))
        if len(examples) % 100 == 0:
            print(f"{len(examples)} of {len(todo)} movies, {time.time() - t0:.0f} s", flush=True)
    card, metrics = train_and_write(examples, a, seg, time.time() - t0)
    print(json.dumps({"card": str(a.out / f"{card.name}.json"), **metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
