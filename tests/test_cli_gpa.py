"""``mltem gpa`` end to end, in-process: outputs, calibration, stacks and error paths."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.cli import main
from mltem.simulate import UniformStrain, simulate_lattice, simulate_lattice_movie

hs = pytest.importorskip("hyperspy.api")
PX = 0.02


def _save(path, data, *, nav_scale=None):
    s = hs.signals.Signal2D(data)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = PX, "nm"
    if nav_scale is not None:
        t = s.axes_manager.navigation_axes[0]
        t.name, t.scale, t.units = "time", nav_scale, "s"
    s.save(path, overwrite=True)
    return str(path)


@pytest.fixture()
def strained(tmp_path):
    sim = simulate_lattice((256, 256), pixel_size_nm=PX, fields=[UniformStrain(exx=0.01, eyy=-0.004)])
    return sim, _save(tmp_path / "img.hspy", sim.image)


def test_single_image_known_strain(strained, tmp_path):
    sim, path = strained
    g = [f"{v:.8f}" for v in sim.g_vectors.ravel()]  # 1/nm
    out = tmp_path / "out"
    code = main(["gpa", path, "--out", str(out), "--spots", *g, "--reference-mode", "none"])
    assert code == 0
    s = hs.load(out / "strain.hspy")
    assert s.data.shape == (4, 256, 256)
    x = s.axes_manager.signal_axes[0]
    assert x.units == "nm" and x.scale == pytest.approx(PX)
    centre = s.data[:, 100:156, 100:156].mean(axis=(1, 2))
    assert_allclose(centre, [0.01, -0.004, 0, 0], atol=1e-4)
    summ = json.loads((out / "summary.json").read_text())
    assert_allclose(summ["parameters"]["g_vectors_per_nm"], sim.g_vectors, atol=1e-9)
    assert summ["parameters"]["mask_size_per_nm"] > 0
    assert "gpa" in summ["timings_s"] and (out / "strain.png").stat().st_size > 10_000


def test_reference_region_in_nm_and_options(strained, tmp_path):
    _, path = strained
    out = tmp_path / "o2"
    code = main(["gpa", path, "--out", str(out), "--reference", "1.5", "3.5", "1.5", "3.5", "--reference-units", "nm",
                 "--mask", "cosine", "--angle-deg", "30", "--definition", "linear"])
    assert code == 0
    summ = json.loads((out / "summary.json").read_text())
    assert summ["parameters"]["reference"] == [75, 175, 75, 175]
    assert summ["parameters"]["mask"] == "cosine"
    # the reference region is unstrained by definition
    assert abs(summ["results"]["exx_mean"]) < 1e-3


def test_stack_streams_with_drift(tmp_path):
    sims = list(simulate_lattice_movie(3, (128, 128), pixel_size_nm=PX, drift_nm_per_frame=(0.1, 0.0),
                                       fields=[UniformStrain(exx=0.01)], amorphous=0.02, thickness=0.3))
    path = _save(tmp_path / "movie.hspy", np.stack([s.image for s in sims]), nav_scale=0.5)
    out = tmp_path / "m"
    assert main(["gpa", path, "--out", str(out), "--lazy"]) == 0
    s = hs.load(out / "strain.hspy")
    assert s.data.shape == (3, 4, 128, 128)
    assert s.axes_manager.navigation_axes[1].units == "s"
    summ = json.loads((out / "summary.json").read_text())
    drift = np.array(summ["results"]["drift_nm"])
    assert_allclose(drift[:, 0], [0, 0.1, 0.2], atol=0.05)
    assert len(summ["results"]["per_frame"]["mean"]["exx"]) == 3


def test_spectrum_is_refused(tmp_path, capsys):
    s = hs.signals.Signal1D(np.random.default_rng(0).random(300).astype(np.float32))
    s.axes_manager.signal_axes[0].units = "eV"
    p = tmp_path / "spec.hspy"
    s.save(p)
    assert main(["gpa", str(p), "--out", str(tmp_path / "x")]) == 2
    assert "spectrum" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--spots", "0", "3.3", "0", "6.6"], "collinear"),
        (["--reference", "0", "10", "0", "9999"], "not inside the image"),
        (["--mask-size", "-1"], "must be > 0"),
        (["--reference-frame", "3"], None),
    ],
)
def test_bad_options_exit_2(strained, tmp_path, capsys, extra, message):
    _, path = strained
    code = main(["gpa", path, "--out", str(tmp_path / "bad"), *extra])
    err = capsys.readouterr().err
    if message is None:  # --reference-frame on a single image is ignored
        assert code == 0
    else:
        assert code == 2 and message in err and "Traceback" not in err


def test_image_without_lattice_exit_2(tmp_path, capsys):
    path = _save(tmp_path / "noise.hspy", np.random.default_rng(1).poisson(50, (128, 128)).astype(np.float32))
    assert main(["gpa", path, "--out", str(tmp_path / "n")]) == 2
    assert "lattice" in capsys.readouterr().err
