"""Benchmark: does ``mltem segment`` tell a movie segmented with the wrong ``--detector``?

    .venv/bin/python benchmarks/bench_segment_contrast.py [--scenes N] [--seed S] [--json FILE]

Draws N scenes (default 100: a quarter open cells, a third of the liquid cells with a
step electrode edge, doses log-uniform 10-600 e/px, 3-7 nm/px, 12 frames of 256 x 256),
images each as bright-field TEM and as annular dark-field STEM, segments every movie with
both shipped networks, and counts how often ``mltem segment``'s check
(:func:`mltem.segment.contrast_mismatch`: :func:`~mltem.segment.contrast_note` of
:func:`~mltem.segment.contrast_statistics`) flags it: runs with the right detector
(network of the movie's contrast) should pass, runs with the wrong one be flagged.
Writes ``results/segment_contrast.json`` (about 2 min on 2 cores at N = 100). The
default seed (13) draws scenes apart from the two sets the limits were set on (seeds 11 and 12).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_segment import positive_int, results_path, write_results  # noqa: E402

from mltem._physics import DETECTORS  # noqa: E402

FRAMES, SIZE = 12, 256


def scene(rng, i: int, seed: int) -> dict:
    """The simulate_movie settings of scene ``i`` (both contrasts share them)."""
    kind = "open" if i % 4 == 0 else "liquid"
    return {"kind": kind, "seed": seed * 1000 + i, "dose": float(np.exp(rng.uniform(np.log(10), np.log(600)))),
            "pixel_size_nm": float(rng.uniform(3, 7)),
            "electrode_edge": {"ramp_px": 0} if (kind == "liquid" and i % 3 == 0) else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=positive_int, default=100, help="scenes drawn (each imaged in both contrasts)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", type=Path, default=None, help="results file (default results/segment_contrast.json)")
    args = ap.parse_args(argv)
    os.environ.setdefault("MLTEM_PROGRESS", "0")

    from mltem.segment import DETECTOR_MODELS, contrast_note, contrast_statistics, load_segment_model, segment_frames
    from mltem.simulate import simulate_movie

    nets = {d: load_segment_model(DETECTOR_MODELS[d]) for d in DETECTORS}
    rng = np.random.default_rng(args.seed)
    runs = []
    t0 = time.perf_counter()
    for i in range(args.scenes):
        kw = scene(rng, i, args.seed)
        for movie_detector in DETECTORS:
            m = simulate_movie(FRAMES, (SIZE, SIZE), detector=movie_detector, **kw)
            for detector in DETECTORS:  # the --detector given, and so the network used
                masks = segment_frames(m.frames, model=nets[detector])
                contrast, skew = contrast_statistics(m.frames, masks)
                note = contrast_note(contrast, skew, detector)
                runs.append({"scene": i, "kind": kw["kind"], "dose": round(kw["dose"], 2),
                             "step_edge": kw["electrode_edge"] is not None, "movie": movie_detector,
                             "detector": detector, "electrode_contrast": contrast, "skew": skew,
                             "flagged": note is not None})
        print(f"\r{i + 1}/{args.scenes} scenes", end="", flush=True)
    print()
    right = [r for r in runs if r["movie"] == r["detector"]]
    wrong = [r for r in runs if r["movie"] != r["detector"]]
    summary = {
        "right_detector_runs": len(right),
        "right_detector_flagged": sum(r["flagged"] for r in right),
        "wrong_detector_runs": len(wrong),
        "wrong_detector_flagged": sum(r["flagged"] for r in wrong),
        "per_pair": {f"{m}_movie_as_{d}": sum(r["flagged"] for r in runs if r["movie"] == m and r["detector"] == d)
                     for m in DETECTORS for d in DETECTORS},
    }
    result = {"scenes": args.scenes, "seed": args.seed, "frames": FRAMES, "size": SIZE, "summary": summary,
              "seconds": round(time.perf_counter() - t0, 1), "runs": runs}
    path = args.json or results_path("segment_contrast")
    write_results(path, result)
    print(f"right detector: {summary['right_detector_flagged']} of {summary['right_detector_runs']} runs flagged; "
          f"wrong detector: {summary['wrong_detector_flagged']} of {summary['wrong_detector_runs']} flagged -> {path}")
    for r in runs:
        if r["flagged"] == (r["movie"] == r["detector"]):
            c, k = (("-" if v is None else f"{v:+.2f}") for v in (r["electrode_contrast"], r["skew"]))
            print(f"  {'false note' if r['flagged'] else 'missed'}: scene {r['scene']} ({r['kind']}, {r['dose']} e/px), "
                  f"{r['movie']} movie as {r['detector']}: electrode contrast {c}, skew {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
