"""The L2,3 simulator: literature positions, linear mixtures, instrument effects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem import MltemError
from mltem.eels import find_l3, thickness_log_ratio
from mltem.simulate import ELEMENT_MODELS, L23Params, element_model, random_l23_batch, simulate_l23, simulate_low_loss
from mltem.simulate._eels import _line_max


def _axis(el, de=0.1):
    m = element_model(el)
    l3 = m.states[0].l3_ev
    return np.arange(l3 - 40, l3 + m.spin_orbit_ev + 40, de)


@pytest.mark.parametrize("element", sorted(ELEMENT_MODELS))
def test_l3_maximum_and_chemical_shift(element):
    m = element_model(element)
    e = _axis(element)
    peaks = []
    for k, st in enumerate(m.states):
        s = simulate_l23(e, element, np.eye(len(m.states))[k], L23Params.fixed(1, resolution_ev=0.5))
        p = find_l3(s, e, element=element, smooth_ev=0.0)
        # the L3 maximum sits where the literature line shape puts it (0.1 eV channels);
        # d10 Cu+ has no white line to speak of, so its edge maximum is elsewhere
        if st.holes >= 1:
            assert abs(float(p.peak_ev) - (st.l3_ev + _line_max(st.l3_lines, 0.5))) < 0.15
        peaks.append(float(p.onset_ev))
    if element == "Cu":  # Cu2+ (d9) has a sharp L3 below the Cu+ (d10) edge (Leapman 1982)
        assert peaks[1] < peaks[0]
    else:  # the onset moves up with the oxidation state
        assert np.all(np.diff(peaks) > 0), peaks


def test_mixtures_are_linear_in_atom_fractions():
    e = _axis("Mn")
    p = L23Params.fixed(1, resolution_ev=0.7, t_lambda=0.4, background_ratio=3.0)
    pure = np.stack([simulate_l23(e, "Mn", f, p) for f in np.eye(3)])
    p0 = L23Params.fixed(1, resolution_ev=0.7, t_lambda=0.4)
    bg = simulate_l23(e, "Mn", [1, 0, 0], p) - simulate_l23(e, "Mn", [1, 0, 0], p0)
    f = np.array([0.2, 0.3, 0.5])
    assert_allclose(simulate_l23(e, "Mn", f, p), f @ (pure - bg) + bg, atol=1e-9)


def test_offset_and_dispersion_errors_move_features():
    e = _axis("Fe")
    s0 = simulate_l23(e, "Fe", [1, 0])
    s1 = simulate_l23(e, "Fe", [1, 0], L23Params.fixed(1, offset_ev=2.5))
    assert_allclose(find_l3(s1, e, element="Fe").peak_ev - find_l3(s0, e, element="Fe").peak_ev, 2.5, atol=0.05)
    s2 = simulate_l23(e, "Fe", [1, 0], L23Params.fixed(1, dispersion=0.02))
    # channels 2 % wider in truth: a feature at E appears at e0 + (E - e0) / 1.02
    e0, pk = e[0], float(find_l3(s0, e, element="Fe").peak_ev)
    assert_allclose(find_l3(s2, e, element="Fe").peak_ev, e0 + (pk - e0) / 1.02, atol=0.06)


def test_plural_scattering_conserves_intensity_and_matches_log_ratio():
    e = np.arange(600.0, 900.0, 0.1)
    thin = simulate_l23(e, "Mn", [0, 0, 1], L23Params.fixed(1, continuum_decay=3.0))
    thick = simulate_l23(e, "Mn", [0, 0, 1], L23Params.fixed(1, t_lambda=0.5, continuum_decay=3.0))
    # intensity moves to higher loss; in a window well inside the spectrum it is conserved
    # up to the part carried past the end (decaying continuum)
    assert abs(thick.sum() / thin.sum() - 1) < 0.03
    assert thick[(e > 638) & (e < 646)].max() < 0.7 * thin[(e > 638) & (e < 646)].max()
    ell = np.arange(-20.0, 200.0, 0.1)
    assert_allclose(thickness_log_ratio(simulate_low_loss(ell, 0.5), ell), 0.5, rtol=0.02)


def test_poisson_noise_and_counts():
    rng = np.random.default_rng(0)
    e = _axis("Ni")
    p = L23Params.fixed(200, counts=500.0, background_ratio=2.0)
    s = simulate_l23(e, "Ni", np.tile([1.0, 0, 0], (200, 1)), p, rng=rng)
    clean = simulate_l23(e, "Ni", [1.0, 0, 0], L23Params.fixed(1, counts=0.0, background_ratio=2.0)) * 500
    assert s.dtype == np.float64 and np.all(s == np.round(s))
    assert_allclose(s.mean(0), clean, rtol=0.05, atol=5)
    # Poisson: variance = mean (200 samples: each channel's variance is known to ~10 %)
    assert_allclose(np.mean(s.var(0, ddof=1)[clean > 100] / clean[clean > 100]), 1.0, rtol=0.03)
    with pytest.raises(ValueError, match="needs an rng"):
        simulate_l23(e, "Ni", [1.0, 0, 0], L23Params.fixed(1, counts=10.0))


def test_random_batch_labels():
    rng = np.random.default_rng(1)
    e, s, f = random_l23_batch("Co", 300, rng, pure_fraction=0.5)
    assert s.shape == (300, e.size) and f.shape == (300, 3)
    assert_allclose(f.sum(1), 1)
    assert abs((f.max(1) == 1).mean() - 0.5) < 0.05
    assert np.all(s >= 0)
    e2, s2, f2 = random_l23_batch("Co", 300, np.random.default_rng(1), pure_fraction=0.5)
    assert_allclose(s2, s)  # seeded


def test_simulator_errors():
    e = _axis("Mn")
    with pytest.raises(ValueError, match="has 3 oxidation states"):
        simulate_l23(e, "Mn", [1, 0])
    with pytest.raises(ValueError, match="sum to 1"):
        simulate_l23(e, "Mn", [0.5, 0.2, 0.1])
    with pytest.raises(MltemError, match="no L2,3 valence model for element 'Zn'"):
        simulate_l23(e, "Zn", [1])
    with pytest.raises(ValueError, match="unknown range"):
        random_l23_batch("Mn", 2, np.random.default_rng(0), ranges={"temperature": (0, 1)})
    with pytest.raises(ValueError, match="unknown parameter"):
        L23Params.fixed(1, colour=1)
    with pytest.raises(ValueError, match="energy_ev must be 1D"):
        simulate_l23(e[:3], "Mn", [1, 0, 0])


def test_new_chemistry_task_adapts_simulator_and_uses_references(tmp_path):
    """The valence task's data recipe: a custom element model plus augmented references."""
    import hyperspy.api as hs
    import yaml

    from mltem.eels._task import ValenceTask, element_model_from_config, load_references
    from mltem.training import TrainConfig

    e = np.arange(600.0, 700.0, 0.1)
    lines = []
    for k, v in enumerate((2, 3, 4)):
        s = hs.signals.Signal1D(simulate_l23(e, "Mn", np.eye(3)[k], L23Params.fixed(1, resolution_ev=0.6)).astype(np.float32))
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = 600.0, 0.1, "eV"
        s.save(tmp_path / f"ref{v}.hspy")
        lines.append(f"ref{v}.hspy,{v}")
    (tmp_path / "references.csv").write_text("file,valence\n" + "\n".join(lines) + "\n")
    cfg_text = (Path(__file__).parents[1] / "train" / "configs" / "valence_new_chemistry.yaml").read_text()
    d = yaml.safe_load(cfg_text)
    d["data"].update(n=60, references=str(tmp_path), reference_fraction=0.5)
    cfg = TrainConfig.from_dict(d)
    m = element_model_from_config(cfg.data)
    assert m.valences == (2, 3, 4) and len(m.states[2].l3_lines) == 2  # the custom model, not the table
    task = ValenceTask()
    x, y = task.make_data(cfg)
    assert x.shape == (90, 1, 256) and y.shape == (90, 3)
    assert_allclose(y.sum(1), 1, atol=1e-5)
    assert task.default_net["out_features"] == 3
    _, refs, fr = load_references(tmp_path, "Mn", (2, 3, 4))
    assert len(refs) == 3
    assert_allclose(fr, np.eye(3))
    (tmp_path / "references.csv").write_text("file,valence\nref2.hspy,7\n")
    with pytest.raises(MltemError, match="not one of the Mn states"):
        load_references(tmp_path, "Mn", (2, 3, 4))
    with pytest.raises(MltemError, match="needs data.element"):
        element_model_from_config({})
