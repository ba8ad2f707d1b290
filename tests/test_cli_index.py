"""``mltem index`` end to end on the shipped example stack, and its error paths."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mltem.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "examples" / "saed_patterns.hspy"
# true answers of the example (datasets/examples/README_index.md): phase, zone, angle mod symmetry
TRUTH = [("Si", (2, 1, 1), 109.1), ("LiFePO4", (1, 1, 0), 108.6), ("Si", (3, 1, 0), 146.4),
         ("graphite", (2, 1, 1), 34.9), ("Si", (2, 1, 1), 152.2)]


def test_index_example_stack(tmp_path):
    out = tmp_path / "idx"
    args = ["--quiet", "index", str(EXAMPLE), "--out", str(out)]
    for p in ("Si", "LiFePO4", "Li2O", "graphite"):
        args += ["--phase", p]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert len(rows) == 5
    for r, (phase, zone, ang) in zip(rows, TRUTH):
        assert r["phase"] == phase
        assert tuple(int(r[k]) for k in ("zone_u", "zone_v", "zone_w")) == zone
        d = abs(float(r["inplane_deg"]) - ang) % 180  # all five zones have 2-fold symmetry
        assert min(d, 180 - d) < 1.0
        assert float(r["calibration_scale"]) == pytest.approx(1 / 1.015, abs=0.006)  # file is 1.5 % off
    assert (out / "summary.png").is_file()
    assert len(list(out.glob("overlay_*.png"))) == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["n_indexed"] == 5


def _npy(tmp_path, arr):
    p = tmp_path / "pat.npy"
    np.save(p, arr)
    return p


def test_index_errors(tmp_path, capsys):
    pat = _npy(tmp_path, np.random.default_rng(0).poisson(10, (2, 64, 64)).astype(np.float32))
    assert main(["index", str(pat), "--phase", "Si", "--out", str(tmp_path / "a")]) == 2
    assert "give --pixel-size" in capsys.readouterr().err
    assert main(["index", str(pat), "--phase", "kryptonite", "--pixel-size", "0.05", "--out", str(tmp_path / "b")]) == 2
    assert "built-in phase" in capsys.readouterr().err
    assert main(["index", str(pat), "--phase", "Si", "--phase", "Si", "--pixel-size", "0.05", "--out", str(tmp_path / "c")]) == 2
    assert "twice" in capsys.readouterr().err
    assert main(["index", str(pat), "--phase", "Si", "--pixel-size", "-1", "--out", str(tmp_path / "d")]) == 2
    assert "positive" in capsys.readouterr().err
    assert main(["index", str(pat), "--phase", "Si", "--camera-length-mm", "100", "--out", str(tmp_path / "e")]) == 2
    assert "go together" in capsys.readouterr().err
    small = _npy(tmp_path, np.zeros((8, 8), np.float32) + 1)
    assert main(["index", str(small), "--phase", "Si", "--pixel-size", "0.05", "--out", str(tmp_path / "f")]) == 2
    assert "too small" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["index", str(empty), "--phase", "Si", "--pixel-size", "0.05", "--out", str(tmp_path / "g")]) == 2
    assert "no readable pattern" in capsys.readouterr().err


def test_index_noise_stack_flagged(tmp_path):
    """Patterns without a crystal come back as phase 'none', not forced onto a template."""
    pat = _npy(tmp_path, np.random.default_rng(1).poisson(20, (2, 128, 128)).astype(np.float32))
    out = tmp_path / "n"
    assert main(["--quiet", "index", str(pat), "--phase", "Cu", "--pixel-size", "0.08", "--out", str(out),
                 "--max-overlays", "1"]) == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert [r["phase"] for r in rows] == ["none", "none"]
    assert len(list(out.glob("overlay_*.png"))) == 1
