"""Fine-tuning the segmentation network for a contrast it was not trained on.

The shipped network learned bright-field TEM movies (denser is darker). Annular dark-field
STEM movies (HAADF: denser is brighter, no Fresnel fringes) are as common in liquid-cell
work, and the network does not read them. Two ways a user gets a network that does, both
through ``mltem train segment --init-from segment-unet``:

* **labels**: a few frames of the user's own movie labelled by hand (here: the simulator's
  exact masks of 3 frames of one HAADF movie, written as a labels folder: ``movie.hspy``
  and ``masks/frame_NNNN.png``), mixed with synthetic bright-field movies so that the
  network keeps what it knew;
* **synthetic**: synthetic movies with half of them imaged as HAADF
  (``data.haadf_fraction``), no labels;
* **synthetic_then_labels**: the synthetic fine-tune, then the 3 labelled frames.

Each network is scored before and after on: the labelled movie's other frames; held-out
HAADF movies (other seeds, liquid and open cells, 15/60/250 e/px); and held-out
bright-field movies (the first movies of ``bench_segment.py``'s held-out set: what the
fine-tune costs on the contrast the network knew). Mean IoU over the classes present,
per-class IoU, and the SEI thickness error per frame measured on the masks (the SEI
refiner belongs to the shipped network's sha256, so the fine-tuned networks are scored
without it, and so is the shipped one here). Writes ``results/segment_finetune.json``.

    .venv/bin/python benchmarks/bench_segment_finetune.py [--quick] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

USER_SEED = 7_200_000  # the movie the "user" labels
HAADF_SEED = 7_100_000  # held-out HAADF movies (bench_segment.py's held-out set starts at 7,000,000)
LABELLED = (0, 8, 16)  # frames labelled by hand
DOSES = (15.0, 60.0, 250.0)


def write_labels(folder: Path, movie, frames) -> None:
    """A labels folder as a user makes it: the movie and one mask image per labelled frame."""
    import hyperspy.api as hs
    import imageio.v3 as iio

    (folder / "masks").mkdir(parents=True, exist_ok=True)
    s = hs.signals.Signal2D(movie.frames)
    s.axes_manager.navigation_axes[0].scale = movie.frame_time_s
    s.axes_manager.navigation_axes[0].units = "s"
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = movie.pixel_size_nm, "nm"
    s.save(folder / "movie.hspy", overwrite=True)
    for t in frames:
        iio.imwrite(folder / "masks" / f"frame_{t:04d}.png", movie.masks[t])


def score_frames(movie, pred, keep) -> dict:
    """IoU and masks-only SEI thickness error on the frames ``keep`` of one movie."""
    from mltem.segment import iou_per_class, measure_movie

    iou = iou_per_class(pred[keep], movie.masks[keep])
    iou[[not (movie.masks[keep] == c).any() for c in range(5)]] = np.nan  # a class absent from the truth: no IoU
    rows, _ = measure_movie(pred, pixel_size_nm=movie.pixel_size_nm, frame_time_s=movie.frame_time_s)
    got = np.array([r["sei_thickness_nm"] for r in rows], float)[keep]
    true = movie.sei_thickness_nm[keep]
    ok = np.isfinite(true) & (true > 0)
    e = np.abs(got[ok] - true[ok]) / true[ok]
    e = np.where(np.isfinite(e), e, 1.0)
    return {"mean_iou": round(float(np.nanmean(iou)), 4),
            "iou": dict(zip(("electrolyte", "electrode", "SEI", "lithium", "bubble"),
                            (round(float(v), 4) if np.isfinite(v) else None for v in iou))),
            "sei_rel_error_median": round(float(np.median(e)), 4), "sei_frames_within_10pct": round(float((e <= 0.1).mean()), 4),
            "frames": int(len(keep))}


def score(model, sets, user_movie) -> dict:
    from bench_segment import evaluate

    from mltem.segment import segment_frames

    def predict(frames):
        return segment_frames(frames, model=model, tile=256, smooth_frames=3)

    out = {}
    rest = np.array([t for t in range(len(user_movie.frames)) if t not in LABELLED])
    out["labelled_movie_other_frames"] = score_frames(user_movie, predict(user_movie.frames), rest)
    for name, movies in sets.items():
        r = evaluate(movies, predict)
        out[name] = {k: r[k] for k in ("mean_iou", "iou", "sei_rel_error_median", "sei_rel_error_p90",
                                       "sei_frames_within_10pct", "sei_frames", "frames")}
    return out


def train(config: dict, work: Path, name: str) -> tuple[Path, float]:
    """``mltem train segment`` on ``config`` (from the shipped network unless the config
    names ``init_from``); the exported card and the seconds it took."""
    import yaml

    cfg_path = work / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    out, export = work / name, work / name / "export"
    cli = [sys.executable, "-c", "import sys; from mltem.cli import main; sys.exit(main())"]
    init = [] if "init_from" in config else ["--init-from", "segment-unet"]
    t0 = time.perf_counter()
    subprocess.run([*cli, "--quiet", "train", "segment", "--config", str(cfg_path), "--out", str(out), "--force",
                    *init, "--export", str(export)], check=True, cwd=ROOT)
    return export / f"{config['export']['name']}.json", time.perf_counter() - t0


def _portable(v):
    """A path as the results file records it: relative to the repository (or to the work
    folder), never this machine's absolute path."""
    if isinstance(v, str) and os.path.isabs(v):
        p = Path(v)
        return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(Path("<work>", *p.parts[-2:]))
    return v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer movies and epochs (a smoke run)")
    ap.add_argument("--work", default=str(ROOT / "runs" / "segment_finetune"), help="training runs go here")
    ap.add_argument("--json", default=str(HERE / "results" / "segment_finetune.json"))
    ap.add_argument("--long", action="store_true",
                    help="also the synthetic fine-tune on 640 movies for 16 epochs (about 18 more minutes)")
    args = ap.parse_args()
    os.environ.setdefault("MLTEM_PROGRESS", "0")
    from bench_segment import HELD_OUT_SEED, held_out, write_results

    from mltem.simulate import simulate_movie

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    q = args.quick
    nl, no, frames = (2, 1, 6) if q else (4, 2, 12)
    sets = {"haadf_heldout": [m for k, d in enumerate(DOSES)
                              for m in held_out(nl, no, frames, 256, d, HAADF_SEED + 1000 * k, detector="haadf")],
            "bf_heldout": [m for k, d in enumerate(DOSES) for m in held_out(nl, no, frames, 256, d, HELD_OUT_SEED + 1000 * k)]}
    user = simulate_movie(24, (256, 256), kind="liquid", seed=USER_SEED, dose=60.0, pixel_size_nm=5.0, detector="haadf")
    write_labels(work / "labels", user, LABELLED)

    result = {"labelled_frames": list(LABELLED), "user_movie": {"seed": USER_SEED, "frames": 24, "size": 256, "dose": 60.0,
                                                                  "detector": "haadf"},
              "sets": {k: {"movies": len(v), "frames": sum(len(m.frames) for m in v)} for k, v in sets.items()}}
    t0 = time.perf_counter()
    result["shipped"] = score("segment-unet", sets, user)
    print(f"scored the shipped network in {time.perf_counter() - t0:.0f} s", flush=True)

    base = {"task": "segment", "batch_size": 16, "weight_decay": 0.0001, "val_fraction": 0.06,
            "net": {"name": "unet", "in_channels": 3, "out_channels": 5, "base": 5, "depth": 4},
            "augment": {"crop": 128, "flips": True, "brightness": 0.1}}
    runs = {
        "labels": {**base, "seed": 2101, "max_epochs": 2 if q else 16, "lr": 0.0003,
                   "data": {"n_movies": 6 if q else 40, "frames": 8, "size": 160, "open_fraction": 0.45,
                            "dark_lithium_probability": 0.3, "labels": str(work / "labels"), "label_repeat": 20},
                   "export": {"name": "segment-unet-ft-labels"}},
        "synthetic": {**base, "seed": 2102, "max_epochs": 2 if q else 12, "lr": 0.0003,
                      "data": {"n_movies": 12 if q else 320, "frames": 8, "size": 160, "open_fraction": 0.45,
                               "dark_lithium_probability": 0.3, "haadf_fraction": 0.5},
                      "export": {"name": "segment-unet-ft-haadf"}},
        # the synthetic fine-tune, then the 3 labelled frames (with synthetic movies of both kinds)
        "synthetic_then_labels": {**base, "seed": 2103, "max_epochs": 2 if q else 10, "lr": 0.0002,
                                  "init_from": str(work / "synthetic" / "model.ckpt"),
                                  "data": {"n_movies": 6 if q else 80, "frames": 8, "size": 160, "open_fraction": 0.45,
                                           "dark_lithium_probability": 0.3, "haadf_fraction": 0.5,
                                           "labels": str(work / "labels"), "label_repeat": 20},
                                  "export": {"name": "segment-unet-ft-haadf-labels"}},
    }
    if args.long:
        runs["synthetic_long"] = {**base, "seed": 2104, "max_epochs": 2 if q else 16, "lr": 0.0003,
                                  "data": {"n_movies": 12 if q else 640, "frames": 8, "size": 160, "open_fraction": 0.45,
                                           "dark_lithium_probability": 0.3, "haadf_fraction": 0.5},
                                  "export": {"name": "segment-unet-ft-haadf-long"}}
    for name, cfg in runs.items():
        card, seconds = train(cfg, work, name)
        recipe = {**cfg["data"], "max_epochs": cfg["max_epochs"], "lr": cfg["lr"], "init_from": cfg.get("init_from", "segment-unet")}
        result[name] = {"train_seconds": round(seconds, 1), "config": {k: _portable(v) for k, v in recipe.items()},
                        **score(str(card), sets, user)}
        print(f"{name}: trained in {seconds:.0f} s", flush=True)

    write_results(args.json, result)
    print(f"\n{'network':<22} {'set':<30} {'mean IoU':>8} {'SEI':>6} {'Li':>6} {'SEI err med':>11} {'<=10 %':>7}")
    for name in ("shipped", *runs):
        for k in ("labelled_movie_other_frames", *sets):
            r = result[name][k]
            print(f"{name:<22} {k:<30} {r['mean_iou']:>8.3f} {r['iou']['SEI'] or 0:>6.3f} {r['iou']['lithium'] or 0:>6.3f} "
                  f"{r['sei_rel_error_median']:>11.3f} {r['sei_frames_within_10pct']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
