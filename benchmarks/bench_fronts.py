"""Reaction-front tracking benchmark: accuracy on held-out synthetic movies, and speed.

Held-out settings: seeds >= 10**6 and frame sizes (160 x 320 wires, 160 x 160 particles)
never used in training (training used 128-px crops of other seeds). For each movie:
position RMS error (px) of the measured and of the Kalman-smoothed track, and the error
of the fitted exponent n; classical vs network. Speed: frames/s on 512 x 512 frames for
the classical tracker and for the network with torch eager vs ONNX (same weights, one run).

Run: flock /tmp/mltem_heavy.lock .venv/bin/python benchmarks/bench_fronts.py
Writes benchmarks/results/fronts.json and prints a table.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mltem.fronts import fit_growth_law, track_fronts, track_fronts_network  # noqa: E402
from mltem.simulate import simulate_front_movie  # noqa: E402

CASES = [(g, n) for g in ("wire", "core-shell", "planar") for n in (0.35, 0.5, 0.8, 1.1)]
SHAPES = {"wire": (160, 320), "core-shell": (160, 160), "planar": (160, 160)}


def _model_available():
    try:
        from mltem.registry import find_model

        find_model("fronts-unet", task="fronts")
        return True
    except Exception:  # noqa: BLE001
        return False


def accuracy(repeats: int = 2):
    rows = []
    net = _model_available()
    for g, n in CASES:
        for r in range(repeats):
            seed = 10**6 + 100 * CASES.index((g, n)) + r
            m = simulate_front_movie(g, shape=SHAPES[g], n_frames=40, n=n, dose=60.0, seed=seed)
            fit_truth = fit_growth_law(m.time_s, m.front_nm, bootstrap=0)
            for method in ("classical", "network") if net else ("classical",):
                fn = track_fronts if method == "classical" else track_fronts_network
                tr = fn(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
                fit = fit_growth_law(tr.time_s, tr.measured_nm, bootstrap=0)
                rows.append({
                    "geometry": g, "n_true": n, "seed": seed, "method": method, "detected": tr.axis.geometry,
                    "rms_px": float(np.sqrt(np.mean((tr.measured_px - m.front_px) ** 2))),
                    "rms_smoothed_px": float(np.sqrt(np.mean((tr.position_nm / m.pixel_size_nm - m.front_px) ** 2))),
                    "n_fit": fit.n, "n_error": fit.n - n, "n_error_vs_truth_fit": fit.n - fit_truth.n,
                })
    return rows


def speed(n_frames: int = 60):
    m = simulate_front_movie("wire", shape=(512, 512), n_frames=n_frames, n=0.5, seed=10**6 + 999)
    out = {"frame_shape": [512, 512], "n_frames": n_frames}
    track_fronts(m.frames[:4], pixel_size_nm=2.0, frame_time_s=0.5)  # warm-up
    t = time.perf_counter()
    track_fronts(m.frames, pixel_size_nm=2.0, frame_time_s=0.5)
    out["classical_fps"] = n_frames / (time.perf_counter() - t)
    if _model_available():
        from mltem.fronts._netinput import network_input
        from mltem.infer import OnnxModel

        x = network_input(m.frames[:8], m.frames[0])
        onnx = OnnxModel("fronts-unet", task="fronts")
        onnx(x[:1])
        t = time.perf_counter()
        for i in range(len(x)):
            onnx(x[i : i + 1])
        out["network_onnx_fps"] = len(x) / (time.perf_counter() - t)
        ckpt = ROOT / "runs" / "fronts" / "model.ckpt"
        if ckpt.is_file():
            import torch

            from mltem.training import load_checkpoint
            from mltem.training._run import build_from_checkpoint

            net = build_from_checkpoint(load_checkpoint(ckpt))
            xt = torch.from_numpy(x)
            with torch.no_grad():
                net(xt[:1])
                t = time.perf_counter()
                for i in range(len(x)):
                    net(xt[i : i + 1])
            out["network_torch_eager_fps"] = len(x) / (time.perf_counter() - t)
        t = time.perf_counter()
        track_fronts_network(m.frames[:8], pixel_size_nm=2.0, frame_time_s=0.5)
        out["network_tracker_fps"] = 8 / (time.perf_counter() - t)
    return out


def main():
    rows = accuracy()
    sp = speed()
    summary = {}
    for method in sorted({r["method"] for r in rows}):
        for g in SHAPES:
            rs = [r for r in rows if r["method"] == method and r["geometry"] == g]
            summary[f"{method}/{g}"] = {
                "rms_px_mean": float(np.mean([r["rms_px"] for r in rs])),
                "rms_px_max": float(np.max([r["rms_px"] for r in rs])),
                "rms_smoothed_px_mean": float(np.mean([r["rms_smoothed_px"] for r in rs])),
                "abs_n_error_mean": float(np.mean([abs(r["n_error"]) for r in rs])),
                "abs_n_error_max": float(np.max([abs(r["n_error"]) for r in rs])),
                "geometry_detected_ok": float(np.mean([r["detected"] == g for r in rs])),
            }
    res = {"summary": summary, "speed": sp, "rows": rows, "threads": os.cpu_count(),
           "noise": "dose 60 counts/px, read noise 2, blur 1 px, drift 0.3 px/frame random walk, 2 % fluctuations"}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "fronts.json").write_text(json.dumps(res, indent=2))
    print(f"{'method/geometry':24s} {'RMS px':>8s} {'max':>6s} {'smooth':>7s} {'|dn|':>6s} {'max':>6s} {'geom ok':>7s}")
    for k, v in summary.items():
        print(f"{k:24s} {v['rms_px_mean']:8.2f} {v['rms_px_max']:6.2f} {v['rms_smoothed_px_mean']:7.2f} "
              f"{v['abs_n_error_mean']:6.3f} {v['abs_n_error_max']:6.3f} {v['geometry_detected_ok']:7.2f}")
    print("speed (512x512):", {k: round(v, 1) if isinstance(v, float) else v for k, v in sp.items()})


if __name__ == "__main__":
    main()
