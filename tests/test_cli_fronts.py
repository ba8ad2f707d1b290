"""``mltem fronts`` end to end on small calibrated movies, and its error paths."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mltem.cli import main
from mltem.simulate import simulate_front_movie


def _save(path, frames, px=2.0, dt=0.5):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(frames)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = px, "nm"
    t = s.axes_manager.navigation_axes[0]
    t.scale, t.units = dt, "s"
    s.save(path, overwrite=True)
    return path


@pytest.fixture(scope="module")
def wire_movie(tmp_path_factory):
    m = simulate_front_movie("wire", shape=(96, 192), n_frames=24, seed=3, n=0.5, fluctuation=0.0)
    return _save(tmp_path_factory.mktemp("fr") / "wire.hspy", m.frames), m


def test_cli_writes_contract_files(wire_movie, tmp_path):
    path, m = wire_movie
    out = tmp_path / "out"
    assert main(["--quiet", "fronts", str(path), "--out", str(out), "--bootstrap", "50"]) == 0
    with open(out / "fronts.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    assert {"frame", "time_s", "front_position_nm", "front_position_std_nm"} <= set(rows[0])
    pos = np.array([float(r["measured_position_nm"]) for r in rows])
    assert np.sqrt(np.mean((pos - m.front_nm) ** 2)) <= 2 * 2.0  # 2 px at 2 nm/px
    kin = json.loads((out / "kinetics.json").read_text())
    assert abs(kin["exponent"] - 0.5) <= 0.05 and kin["verdict"] == "diffusion-controlled"
    assert kin["ci"]["n"][0] < kin["exponent"] < kin["ci"]["n"][1] and "n" in kin["bootstrap_ci"]
    assert (out / "kymograph.png").is_file() and (out / "kymograph.hspy").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["geometry"] == "wire"


def test_cli_tiny_static_movie_writes_warning(tmp_path):
    # the contract's movie: 6 Poisson frames with a dark band, nothing moves
    rng = np.random.default_rng(0)
    mv = rng.poisson(40 * np.ones((6, 64, 64))).astype(np.float32)
    mv[:, :, :15] *= 0.4
    path = _save(tmp_path / "static.hspy", mv)
    assert main(["--quiet", "fronts", str(path), "--out", str(tmp_path / "o"), "--bootstrap", "0"]) == 0
    kin = json.loads((tmp_path / "o" / "kinetics.json").read_text())
    assert "exponent" in kin and "poorly constrained" in kin["warning"]


def test_cli_axis_override(wire_movie, tmp_path):
    path, m = wire_movie
    y = m.params["contact_xy"][1]
    code = main(["--quiet", "fronts", str(path), "--out", str(tmp_path / "a"), "--axis", "0", str(y), "150", str(y),
                 "--bootstrap", "0"])
    assert code == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["parameters"]["axis_px"][0] == 0.0


@pytest.mark.parametrize("extra, match", [
    (["--axis", "0", "0", "999", "0"], "outside"),
    (["--axis", "0", "0", "1", "1"], "shorter than 4 px"),
    (["--half-width", "3"], "goes with --axis"),
    (["--t0", "soon"], "--t0 must be"),
    (["--x0", "left"], "--x0 must be"),
])
def test_cli_option_errors(wire_movie, tmp_path, capsys, extra, match):
    path, _ = wire_movie
    assert main(["--quiet", "fronts", str(path), "--out", str(tmp_path / "e"), *extra]) == 2
    assert match in capsys.readouterr().err


def test_cli_rejects_single_image_and_spectrum(tmp_path, capsys, spectrum_file):
    img = tmp_path / "one.npy"
    np.save(img, np.ones((32, 32), np.float32))
    assert main(["--quiet", "fronts", str(img), "--out", str(tmp_path / "o1")]) == 2
    assert "navigation" in capsys.readouterr().err
    assert main(["--quiet", "fronts", str(spectrum_file), "--out", str(tmp_path / "o2")]) == 2
    assert "needs an image" in capsys.readouterr().err
