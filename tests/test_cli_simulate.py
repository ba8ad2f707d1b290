"""``mltem simulate``: every kind writes data with its exact answers, and the analysis
commands recover those answers."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mltem.cli import main


def _load(p):
    import hyperspy.api as hs

    return hs.load(p)


@pytest.mark.parametrize(
    "kind, extra, files",
    [
        ("lattice", ["--size", "128"], ["image.hspy", "strain_true.hspy"]),
        ("hologram", ["--size", "128"], ["hologram.hspy", "reference.hspy", "phase_true.hspy"]),
        ("eels", ["--n", "5", "--element", "Co"], ["spectra.hspy", "truth.csv"]),
        ("saed", ["--n", "3", "--size", "128", "--phase", "Si"], ["patterns.hspy", "truth.csv"]),
        ("movie", ["--n", "3", "--size", "128"], ["movie.hspy", "masks_true.hspy", "truth.csv"]),
        ("fronts", ["--n", "6", "--size", "128"], ["movie.hspy", "masks_true.hspy", "truth.csv"]),
    ],
)
def test_every_kind_writes_data_and_truth(tmp_path, kind, extra, files):
    out = tmp_path / kind
    assert main(["--quiet", "simulate", kind, "--out", str(out), *extra]) == 0
    for f in files:
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == f"simulate {kind}" and set(files) <= set(summary["outputs"])
    if "truth.csv" in files:
        rows = list(csv.DictReader(open(out / "truth.csv")))
        n = int(extra[extra.index("--n") + 1])
        assert len(rows) == n
    if kind == "eels":
        rows = list(csv.DictReader(open(out / "truth.csv")))
        fr = np.array([[float(r[c]) for c in r if c.startswith("frac_")] for r in rows])
        np.testing.assert_allclose(fr.sum(1), 1.0, atol=1e-6)
        s = _load(out / "spectra.hspy")
        assert s.axes_manager.signal_axes[0].units == "eV" and s.data.shape[0] == 5
    if kind in ("movie", "fronts"):
        m, k = _load(out / "movie.hspy"), _load(out / "masks_true.hspy")
        assert m.data.shape == k.data.shape and k.data.dtype == np.uint8
        assert m.axes_manager.navigation_axes[0].units == "s"


def test_simulated_hologram_phase_is_recovered_by_holo(tmp_path):
    sim, rec = tmp_path / "sim", tmp_path / "rec"
    assert main(["--quiet", "simulate", "hologram", "--out", str(sim), "--size", "256", "--dose", "3000"]) == 0
    assert main(["--quiet", "holo", str(sim / "hologram.hspy"), "--reference", str(sim / "reference.hspy"), "--out", str(rec)]) == 0
    got = np.asarray(_load(rec / "phase.hspy").data, float)
    true = np.asarray(_load(sim / "phase_true.hspy").data, float)
    inner = (slice(48, -48), slice(48, -48))  # away from the overlap border and Fresnel fringes
    d = (got - true)[inner]
    d -= d.mean()
    # 3000 e/px and fringe contrast 0.3 give ~0.01 rad noise; 0.05 leaves room for aperture blur
    assert np.sqrt(np.mean(d**2)) < 0.05


def test_dark_field_movie_has_the_bright_field_scene_with_reversed_contrast(tmp_path):
    bf, df = tmp_path / "bf", tmp_path / "df"
    assert main(["--quiet", "simulate", "movie", "--out", str(bf), "--n", "2", "--size", "96", "--seed", "3"]) == 0
    assert main(["--quiet", "simulate", "movie", "--out", str(df), "--n", "2", "--size", "96", "--seed", "3",
                 "--detector", "haadf"]) == 0
    k = np.asarray(_load(bf / "masks_true.hspy").data)
    np.testing.assert_array_equal(np.asarray(_load(df / "masks_true.hspy").data), k)
    assert json.loads((df / "summary.json").read_text())["results"]["detector"] == "haadf"
    a, b = np.asarray(_load(bf / "movie.hspy").data)[0], np.asarray(_load(df / "movie.hspy").data)[0]
    el = k[0] == 1  # the electrode: darkest in bright field, brightest in dark field
    assert np.median(a[el]) < np.median(a[~el]) and np.median(b[el]) > np.median(b[~el])
