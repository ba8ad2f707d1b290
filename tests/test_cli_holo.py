"""``mltem holo`` end to end, in-process, on tiny synthetic holograms."""
import csv
import json

import numpy as np
import pytest

from mltem.cli import main
from mltem.simulate import phase_charged_sphere, simulate_hologram

N, PX = 128, 0.5


def _save(path, arr, *, nav_scale=None):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(arr, np.float32))
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = PX, "nm"
    if nav_scale is not None:
        ax = s.axes_manager.navigation_axes[0]
        ax.scale, ax.units = nav_scale, "s"
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    s.save(path, overwrite=True)
    return str(path)


def _load(path):
    import hyperspy.api as hs

    return hs.load(str(path))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("holo")
    phase = phase_charged_sphere((N, N), pixel_size_nm=PX, radius_nm=6, charge_e=30, beam_energy_kev=200)
    sim = simulate_hologram(phase, dose=3000, pixel_size_nm=PX, seed=0)
    return _save(d / "obj.hspy", sim.hologram), _save(d / "ref.hspy", sim.reference), sim, d


def test_holo_single_full(pair, tmp_path):
    obj, ref, sim, _ = pair
    out = tmp_path / "out"
    code = main(["--quiet", "holo", obj, "--reference", ref, "--out", str(out), "--thickness", "20",
                 "--profile", "64", "10", "64", "118", "6", "--vacuum", "0", "16", "0", "16", "--ramp", "offset"])
    assert code == 0
    for f in ("phase.hspy", "amplitude.hspy", "potential.hspy", "charge.hspy", "phase.png", "profile.csv",
              "profile.png", "summary.json"):
        assert (out / f).is_file(), f
    ph = _load(out / "phase.hspy")
    assert ph.data.shape == (N, N) and ph.data.dtype == np.float32
    assert ph.axes_manager.signal_axes[0].scale == pytest.approx(PX)
    assert ph.metadata.Signal.quantity == "Phase (rad)"
    assert "e/nm^2" in _load(out / "charge.hspy").metadata.Signal.quantity
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["beam_energy_kev"] == 200.0  # from the file's metadata
    assert summary["results"]["units"]["charge"] == "e/nm^2"
    assert np.hypot(*(np.subtract(summary["results"]["sideband_ky_kx_px"], sim.sideband))) < 0.5
    # the phase equals the simulated one (offset set in the vacuum corner)
    d = ph.data[16:-16, 16:-16] - (sim.phase - sim.phase[:16, :16].mean())[16:-16, 16:-16]
    assert np.sqrt(np.mean((d - d.mean()) ** 2)) < 0.03
    with open(out / "profile.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"frame", "distance_nm", "phase_rad", "potential_v", "charge_e_per_nm2"} <= set(rows[0])
    assert float(rows[-1]["distance_nm"]) == pytest.approx(108 * PX, rel=1e-3)


def test_holo_series(pair, tmp_path):
    _, ref, sim, d = pair
    frames = np.stack([sim.hologram] * 3)  # a still series: every frame reconstructs alike
    movie = _save(d / "movie.hspy", frames, nav_scale=0.5)
    out = tmp_path / "series"
    assert main(["--quiet", "holo", movie, "--reference", ref, "--out", str(out), "--charge",
                 "--aperture", "butterworth", "--aperture-radius", "15"]) == 0
    ph = _load(out / "phase.hspy")
    assert ph.data.shape == (3, N, N)
    assert ph.axes_manager.navigation_axes[0].units == "s"
    assert (out / "charge.hspy").is_file() and not (out / "potential.hspy").exists()
    assert not any(p.name.startswith(".holo_tmp") for p in out.iterdir())  # temporary files removed
    np.testing.assert_allclose(ph.data[2], ph.data[0], atol=1e-4)
    s = json.loads((out / "summary.json").read_text())
    assert s["results"]["frames"] == 3 and len(s["results"]["drift_px"]) == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--vacuum", "0", "500", "0", "10"], "--vacuum"),
        (["--profile", "0", "0", "300", "5", "4"], "--profile"),
        (["--thickness", "-5"], "--thickness must be > 0"),
        (["--aperture-radius", "0"], "--aperture-radius"),
        (["--sideband", "0", "0.5"], "centre band"),
    ],
)
def test_holo_bad_options(pair, tmp_path, capsys, extra, message):
    obj, ref, _, _ = pair
    code = main(["--quiet", "holo", obj, "--reference", ref, "--out", str(tmp_path / "o"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_holo_bad_inputs(pair, tmp_path, capsys):
    obj, _, _, d = pair
    small = _save(d / "small.hspy", np.ones((64, 64)))
    assert main(["--quiet", "holo", obj, "--reference", small, "--out", str(tmp_path / "a")]) == 2
    assert "reference is 64 x 64" in capsys.readouterr().err
    assert main(["--quiet", "holo", str(d / "missing.hspy"), "--out", str(tmp_path / "b")]) == 2
    assert "no such file" in capsys.readouterr().err
    import hyperspy.api as hs

    spec = hs.signals.Signal1D(np.ones(100, np.float32))
    spec.save(d / "spec.hspy", overwrite=True)
    assert main(["--quiet", "holo", str(d / "spec.hspy"), "--out", str(tmp_path / "c")]) == 2
    assert "needs an image" in capsys.readouterr().err
