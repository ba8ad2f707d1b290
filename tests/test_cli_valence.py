"""``mltem valence`` and the shipped valence models, on simulated and real spectra."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mltem.cli import main
from mltem.demo import examples_dir
from mltem.eels import analyse_valence
from mltem.simulate import element_model, random_l23_batch

EX = examples_dir()


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _save_spectrum(path, data, offset, scale, nav_scale=None):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.asarray(data, np.float32))
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = offset, scale, "eV"
    for a in s.axes_manager.navigation_axes:
        a.scale, a.units = nav_scale or 1.0, "nm"
    s.save(path, overwrite=True)
    return path


def test_shipped_mn_model_classifies_held_out_pure_states():
    # held out: a seed the training recipe never used, realistic noise and nuisances
    m = element_model("Mn")
    rng = np.random.default_rng(20240601)
    e, spectra, f = random_l23_batch("Mn", 150, rng, pure_fraction=1.0, energy_ev=np.arange(595.0, 700.0, 0.2))
    res = analyse_valence(spectra, e, element="Mn")
    truth = np.asarray(m.valences)[f.argmax(1)]
    pred = np.asarray(res.valences)[res.fractions.argmax(1)]
    assert res.fractions.shape == (150, 3)
    assert (pred == truth).mean() >= 0.95, (pred != truth).sum()
    assert np.abs(res.valence - truth).mean() < 0.15


def test_contract_single_spectrum(tmp_path):
    e = 620.0 + 0.1 * np.arange(600)
    spec = 100 + 400 * np.exp(-((e - 642) ** 2) / 2) + 150 * np.exp(-((e - 653) ** 2) / 2) + 80 / (1 + np.exp(-(e - 642)))
    f = _save_spectrum(tmp_path / "mn.hspy", spec, 620.0, 0.1)
    assert main(["--quiet", "valence", str(f), "--element", "Mn", "--out", str(tmp_path / "val")]) == 0
    rows = _rows(tmp_path / "val" / "valence.csv")
    assert len(rows) == 1
    assert {"index", "valence", "frac_mn2", "frac_mn3", "frac_mn4", "l3_l2_ratio", "l3_onset_ev", "reliability"} <= set(rows[0])
    fr = [float(rows[0][k]) for k in ("frac_mn2", "frac_mn3", "frac_mn4")]
    assert abs(sum(fr) - 1) < 1e-4 and 2 <= float(rows[0]["valence"]) <= 4
    # two Gaussians of heights 400 and 150 on a 100-count floor: L3/L2 well above 1
    assert float(rows[0]["l3_l2_ratio"]) > 1.5
    assert 638 < float(rows[0]["l3_onset_ev"]) < 642
    s = json.loads((tmp_path / "val" / "summary.json").read_text())
    assert s["models"][0]["name"] == "valence-mn" and len(s["models"][0]["sha256"]) == 64
    assert (tmp_path / "val" / "valence.png").is_file() and not (tmp_path / "val" / "valence.hspy").exists()


def test_real_mno_reads_as_mn2(tmp_path):
    """Real MnO (Mn2+), uncalibrated by about +4 eV, background already removed."""
    assert main(["--quiet", "valence", str(EX / "mno_mn_l23.msa"), "--element", "Mn", "--out", str(tmp_path / "o")]) == 0
    r = _rows(tmp_path / "o" / "valence.csv")[0]
    assert float(r["valence"]) < 2.4, r
    assert float(r["frac_mn2"]) > max(float(r["frac_mn3"]), float(r["frac_mn4"]))
    # Mn2+ has the largest white-line ratio of the manganese oxides (Pearson method: ~4-5)
    assert float(r["l3_l2_ratio"]) > 3.5


def test_real_nmc_spectrum_image_end_to_end(tmp_path):
    out = tmp_path / "nmc"
    args = ["--quiet", "valence", str(EX / "nmc_core_loss_SI.dm3"), "--element", "Mn", "--out", str(out),
            "--low-loss", str(EX / "nmc_low_loss_SI.dm3"), "--pca", "4"]
    assert main(args) == 0
    rows = _rows(out / "valence.csv")
    assert len(rows) == 42 and {"y", "x", "t_lambda"} <= set(rows[0])
    import hyperspy.api as hs

    maps = hs.load(out / "valence.hspy")
    names = maps.metadata.General.map_names
    assert names[:4] == ["valence", "frac_mn2", "frac_mn3", "frac_mn4"]
    assert maps.data.shape == (len(names), 2, 21)
    assert maps.axes_manager.signal_axes[0].units == "nm"
    v = maps.data[0]
    assert np.all((v >= 2) & (v <= 4))
    assert (out / "valence.png").is_file() and (out / "valence_spectrum.png").is_file()
    s = json.loads((out / "summary.json").read_text())
    assert s["results"]["n_spectra"] == 42 and s["parameters"]["pca"] == 4


def test_line_scan_writes_1d_maps(tmp_path):
    rng = np.random.default_rng(5)
    e, spectra, f = random_l23_batch("Co", 6, rng, energy_ev=np.arange(740.0, 840.0, 0.25))
    p = _save_spectrum(tmp_path / "scan.hspy", spectra, 740.0, 0.25, nav_scale=2.0)
    assert main(["--quiet", "valence", str(p), "--element", "Co", "--out", str(tmp_path / "o")]) == 0
    import hyperspy.api as hs

    m = hs.load(tmp_path / "o" / "valence.hspy")
    assert m.data.shape[-1] == 6 and m.data.shape[0] == 7  # valence, 3 fractions, ratio, onset, reliability
    assert len(_rows(tmp_path / "o" / "valence.csv")) == 6


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--element", "O"], "not the K edge"),
        (["--element", "Cu"], "outside the recorded range"),
        (["--element", "Mn", "--pca", "3"], "needs more spectra than components"),
        (["--element", "Mn", "--background-window", "650", "640"], "two increasing energies"),
        (["--element", "Mn", "--model", "no-such-model"], "no model named"),
        (["--element", "Unobtainium"], "no edge data"),
    ],
)
def test_errors(tmp_path, capsys, extra, match):
    f = EX / "mno_mn_l23.msa"
    assert main(["valence", str(f), "--out", str(tmp_path / "o"), *extra]) == 2
    assert match in capsys.readouterr().err


def test_not_a_spectrum(tmp_path, capsys):
    assert main(["valence", str(EX / "lattice_hrtem.tif"), "--element", "Mn", "--out", str(tmp_path / "o")]) == 2
    assert "needs a spectrum" in capsys.readouterr().err


def test_cli_train_valence_for_another_element(tmp_path):
    """``mltem train valence --element EL`` retargets a config to a new element."""
    import json

    pytest.importorskip("lightning")
    from mltem.cli import main

    cfg = tmp_path / "v.yaml"
    cfg.write_text(
        "task: valence\nseed: 1\nmax_epochs: 1\nbatch_size: 32\nval_fraction: 0.25\n"
        "net: {name: spectrum, length: 256, channels: [4, 8], hidden: 8}\n"
        "data: {element: Mn, n: 64}\nexport: {name: valence-mn}\n"
    )
    out = tmp_path / "run"
    assert main(["--quiet", "train", "valence", "--config", str(cfg), "--element", "Cu", "--out", str(out),
                 "--export", str(tmp_path / "models")]) == 0
    card = json.loads((tmp_path / "models" / "valence-cu.json").read_text())
    assert card["task"] == "valence" and card["recipe"]["config"]["data"]["element"] == "Cu"
    assert main(["--quiet", "train", "valence", "--config", str(cfg), "--element", "Xx", "--out", str(tmp_path / "bad")]) == 2


def test_cli_element_option_only_for_valence(tmp_path, capsys):
    from mltem.cli import main

    cfg = tmp_path / "s.yaml"
    cfg.write_text("task: segment\n")
    assert main(["train", "segment", "--config", str(cfg), "--element", "Mn", "--out", str(tmp_path / "o")]) == 2
    assert "--element does not apply to the 'segment' task" in capsys.readouterr().err
