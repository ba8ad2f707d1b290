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
    # several patterns: one shared calibration (the example's file value is 1.5 % too large)
    cal = summary["results"]["calibration"]
    assert cal["mode"] == "shared" and cal["n_used"] >= 3
    assert cal["scale"] == pytest.approx(1 / 1.015, rel=0.004)  # 0.065 / (0.065 * 1.015), spots' noise
    assert cal["percent_change"] == pytest.approx(100 * (1 / 1.015 - 1), abs=0.4)
    assert cal["pixel_size_refined_inv_nm"] == pytest.approx(0.065, rel=0.004)
    assert 0 <= cal["spread_percent"] < 0.5
    assert [r["calibration_mode"] for r in rows] == ["shared"] * 5
    for r in rows:
        assert float(r["pixel_size_inv_nm"]) == pytest.approx(0.065, rel=0.006)
    # a calibration sample of 3: the other 2 patterns are matched in the shared window by the
    # worker processes themselves; the same answers
    out3 = tmp_path / "idx3"
    args3 = [str(out3) if a == str(out) else a for a in args]
    assert main(args3 + ["--calibration-sample", "3", "--jobs", "2", "--max-overlays", "0"]) == 0
    rows3 = list(csv.DictReader(open(out3 / "index.csv")))
    assert [r["calibration_mode"] for r in rows3] == ["shared"] * 5
    for r, r3 in zip(rows, rows3):
        assert (r3["phase"], r3["zone_u"], r3["zone_v"], r3["zone_w"]) == (r["phase"], r["zone_u"], r["zone_v"], r["zone_w"])
        assert float(r3["inplane_deg"]) == pytest.approx(float(r["inplane_deg"]), abs=0.05)
    assert json.loads((out3 / "summary.json").read_text())["results"]["calibration"]["n_used"] == 3


def test_index_per_pattern_calibration_and_options(tmp_path, capsys):
    out = tmp_path / "pp"
    base = ["--quiet", "index", str(EXAMPLE), "--phase", "Si", "--phase", "LiFePO4", "--phase", "graphite",
            "--max-overlays", "0"]
    assert main(base + ["--out", str(out), "--calibration", "per-pattern", "--method", "classical"]) == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert [r["calibration_mode"] for r in rows] == ["per-pattern"] * 5
    assert [r["phase"] for r in rows] == [t[0] for t in TRUTH]
    cal = json.loads((out / "summary.json").read_text())["results"]["calibration"]
    assert cal["mode"] == "per-pattern" and "scale" not in cal
    # worker processes do not change the answers
    outj = tmp_path / "ppj"
    assert main(base + ["--out", str(outj), "--calibration", "per-pattern", "--method", "classical", "--jobs", "2"]) == 0
    assert (outj / "index.csv").read_text() == (out / "index.csv").read_text()
    assert cal["pattern_scale_median"] == pytest.approx(1 / 1.015, abs=0.006)
    # a known standard in the series: only the Si patterns set the factor (3 of them)
    out2 = tmp_path / "std"
    assert main(base + ["--out", str(out2), "--calibration-phase", "Si", "--method", "classical"]) == 0
    cal = json.loads((out2 / "summary.json").read_text())["results"]["calibration"]
    assert cal["reference_phase"] == "Si" and cal["n_used"] == 3
    assert cal["scale"] == pytest.approx(1 / 1.015, rel=0.004)
    assert main(base + ["--out", str(tmp_path / "x"), "--calibration-phase", "Cu"]) == 2
    assert "not one of the phases" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "y"), "--calibration-window", "0.5"]) == 2
    assert "--calibration-window" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "z"), "--calibration", "per-pattern", "--calibration-phase", "Si"]) == 2
    assert "needs --calibration shared" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "j"), "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


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
