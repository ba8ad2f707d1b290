"""Speed of the shared U-Net: torch eager vs onnxruntime (fp32), per 512x512 frame.

Run: ``.venv/bin/python benchmarks/bench_infer.py`` (writes results/infer.json).
The figures are frames per second on this machine, both runtimes measured in the same
run with the same threads; the ratio is what to compare across machines.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> int:
    import torch

    from mltem.export import export_onnx
    from mltem.infer import OnnxModel
    from mltem.nets import create_net

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    rows = []
    x = np.random.default_rng(0).standard_normal((1, 1, 512, 512)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        for base in (8, 16):
            net = create_net("unet", in_channels=1, out_channels=5, base=base, depth=4).eval()
            card = export_onnx(net, x, d, name=f"unet{base}", task="bench", dynamic_spatial=True)
            m = OnnxModel(card, threads=threads)
            with torch.no_grad():
                t_torch = _time(lambda: net(torch.from_numpy(x)), 3)
            t_ort = _time(lambda: m(x), 5)
            rows.append({"net": f"unet base {base} depth 4", "frame": "512x512",
                         "torch_fps": 1 / t_torch, "onnx_fps": 1 / t_ort, "onnx_speedup": t_torch / t_ort,
                         "onnx_size_kb": Path(card.path).stat().st_size / 1e3})
    out = Path(__file__).parent / "results" / "infer.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"threads": threads, "rows": rows}, indent=2) + "\n")
    print(f"{'network':<24} {'torch fps':>10} {'onnx fps':>10} {'speed-up':>9} {'size kB':>8}")
    for r in rows:
        print(f"{r['net']:<24} {r['torch_fps']:>10.2f} {r['onnx_fps']:>10.2f} {r['onnx_speedup']:>9.2f} {r['onnx_size_kb']:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
