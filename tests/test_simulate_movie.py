"""The synthetic in-situ movie generator: shapes, determinism, physics of the contrast,
the SEI time law and its truth, error paths."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage as ndi

from mltem.simulate import MOVIE_CLASSES, sei_time_law, simulate_movie


@pytest.fixture(scope="module")
def liquid():
    return simulate_movie(6, (96, 96), seed=3, n_dendrites=2, n_bubbles=2, n_deposits=1)


def test_shapes_types_and_calibration(liquid):
    m = liquid
    assert m.frames.shape == m.masks.shape == (6, 96, 96)
    assert m.frames.dtype == np.float32 and m.masks.dtype == np.uint8
    assert m.masks.max() <= 4 and MOVIE_CLASSES[0] == "electrolyte" and len(MOVIE_CLASSES) == 5
    assert m.pixel_size_nm == 5.0 and m.frame_time_s == 0.5
    assert_allclose(m.time_s, 0.5 * np.arange(6))
    assert len(m.dendrite_tips) == 6 and all(t.shape[1] == 2 for t in m.dendrite_tips)
    assert set(m.truth()) >= {"sei_thickness_nm", "lithium_area_nm2", "dendrite_tips"}


def test_same_seed_same_movie_other_seed_other_movie(liquid):
    again = simulate_movie(6, (96, 96), seed=3, n_dendrites=2, n_bubbles=2, n_deposits=1)
    np.testing.assert_array_equal(again.frames, liquid.frames)
    np.testing.assert_array_equal(again.masks, liquid.masks)
    other = simulate_movie(6, (96, 96), seed=4, n_dendrites=2, n_bubbles=2, n_deposits=1)
    assert not np.array_equal(other.masks, liquid.masks)


def test_lithium_area_truth_is_the_mask_area(liquid):
    area = (liquid.masks == 3).sum(axis=(1, 2)) * liquid.pixel_size_nm**2
    assert_allclose(liquid.lithium_area_nm2, area)


def test_bright_field_contrast_order():
    # Noise-free, no blur-dominated thin layers: electrode darkest, bubbles brightest.
    m = simulate_movie(3, (128, 128), seed=5, noise=False, n_bubbles=3, n_dendrites=0, n_deposits=0,
                       sei_max_nm=100.0, pixel_size_nm=5.0)
    f, k = m.frames[-1], m.masks[-1]
    means = {c: f[k == c].mean() for c in range(5) if (k == c).sum() > 30}
    assert means[1] < means[2] < means[0]
    if 4 in means:
        assert means[4] > means[0]


def test_dark_field_contrast_order_and_same_scene():
    # HAADF: the signal follows the mass-thickness, so the order of bright field reverses
    # (electrode brightest, bubbles darkest) and bright (light) lithium turns dark; the
    # same seed draws the same scene and masks.
    kw = dict(seed=5, n_bubbles=3, n_dendrites=0, n_deposits=0, sei_max_nm=100.0, pixel_size_nm=5.0)
    bf = simulate_movie(3, (128, 128), noise=False, **kw)
    df = simulate_movie(3, (128, 128), noise=False, detector="haadf", **kw)
    np.testing.assert_array_equal(df.masks, bf.masks)
    np.testing.assert_array_equal(df.sei_thickness_nm, bf.sei_thickness_nm)
    assert df.params["detector"] == "haadf" and bf.params["detector"] == "bf"
    f, k = df.frames[-1], df.masks[-1]
    means = {c: f[k == c].mean() for c in range(5) if (k == c).sum() > 30}
    assert means[1] > means[2] > means[0]
    if 4 in means:
        assert means[4] < means[0]


def test_dose_sets_the_counts_and_poisson_noise():
    lo = simulate_movie(2, (64, 64), seed=1, dose=10.0, n_dendrites=0, n_bubbles=0, n_deposits=0, electrode_fraction=0.2)
    hi = simulate_movie(2, (64, 64), seed=1, dose=1000.0, n_dendrites=0, n_bubbles=0, n_deposits=0, electrode_fraction=0.2)
    # Same seed, same camera: counts scale with the dose, relative noise with 1/sqrt(dose).
    sel = lo.masks[0] == 0
    r = np.median(hi.frames[0][sel]) / np.median(lo.frames[0][sel])
    assert 70 < r < 130

    def rel_noise(x):
        d = np.diff(x[0][sel])  # robust (MAD): hot pixels and spikes are camera artefacts
        return 1.4826 * np.median(np.abs(d - np.median(d))) / np.median(x[0][sel])
    assert rel_noise(lo.frames) > 5 * rel_noise(hi.frames)  # sqrt(100) = 10, minus read noise/texture


def test_electrode_only_moves_with_drift():
    still = simulate_movie(4, (64, 64), seed=2, drift_px=0.0, n_dendrites=0, n_deposits=0, n_bubbles=0)
    for t in range(1, 4):
        np.testing.assert_array_equal(still.masks[t] == 1, still.masks[0] == 1)
    moving = simulate_movie(4, (64, 64), seed=2, drift_px=2.0, n_dendrites=0, n_deposits=0, n_bubbles=0)
    assert not np.array_equal(moving.masks[3] == 1, moving.masks[0] == 1)


def test_sei_time_law_parabolic_then_saturating():
    tau = 100.0
    s = sei_time_law([0.01, 0.04, 1e4], sei0_nm=0.0, sei_max_nm=300.0, tau_s=tau)
    assert_allclose(s[1] / s[0], 2.0, rtol=1e-3)  # S ~ sqrt(t) early (t << tau)
    assert_allclose(s[2], 300.0)  # plateau
    assert np.all(np.diff(sei_time_law(np.linspace(0, 500, 50), sei0_nm=20, sei_max_nm=300, tau_s=tau)) > 0)
    with pytest.raises(ValueError, match="tau_s must be > 0"):
        sei_time_law([1.0], sei0_nm=0, sei_max_nm=1, tau_s=0)


def test_sei_truth_follows_the_law():
    m = simulate_movie(8, (96, 96), seed=7, sei_max_nm=200.0, sei_tau_s=4.0, n_dendrites=0, n_deposits=0, n_bubbles=0)
    p = m.params
    law = sei_time_law(p["t_start_s"] + m.time_s, sei0_nm=p["sei0_nm"], sei_max_nm=200.0, tau_s=4.0)
    # The truth is the law times the mean of the along-edge variation over the visible
    # edge (amplitude <= 0.35, several periods): within 35 % and increasing.
    assert np.all(np.abs(m.sei_thickness_nm / law - 1) < 0.35)
    assert np.all(np.diff(m.sei_thickness_nm) > 0)


def test_open_cell_has_no_bubbles_and_a_wire():
    m = simulate_movie(4, (96, 96), kind="open", seed=1)
    assert not (m.masks == 4).any() and (m.masks == 1).any() and (m.masks == 3).any()
    assert m.kind == "open"


def test_open_cell_shell_is_resolvable_and_its_truth_measurable():
    # The Li2O shell is >= 3 px thick and starts behind the swelling zone, so the
    # thickness measured on the exact masks matches the truth within 10 % on every frame
    # with a shell (a sub-pixel or tapered shell gave errors up to 40 %).
    from mltem.segment import measure_movie

    for seed in (2, 5):
        m = simulate_movie(8, (128, 128), kind="open", seed=seed, pixel_size_nm=4.0)
        ok = np.isfinite(m.sei_thickness_nm)
        assert ok.any()
        assert np.all(m.sei_thickness_nm[ok] >= 3 * 4.0 - 1e-6)
        rows, _ = measure_movie(m.masks, pixel_size_nm=4.0, frame_time_s=m.frame_time_s)
        got = np.array([r["sei_thickness_nm"] for r in rows])
        assert np.all(np.abs(got[ok] / m.sei_thickness_nm[ok] - 1) <= 0.10)


def test_dark_lithium_probability_sets_the_lithium_contrast():
    sign = [np.sign(simulate_movie(1, (32, 32), seed=s, dark_lithium_probability=p, noise=False).params["contrast"]["lithium"])
            for p in (0.0, 1.0) for s in range(6)]
    assert sign == [1.0] * 6 + [-1.0] * 6
    # the default keeps the historical draw (same movies as before the option existed)
    a = simulate_movie(2, (32, 32), seed=4)
    b = simulate_movie(2, (32, 32), seed=4, dark_lithium_probability=0.15)
    assert np.array_equal(a.frames, b.frames)


def test_contrast_overrides_change_only_the_contrast():
    a = simulate_movie(3, (64, 64), seed=5, noise=False, electrode_fraction=0.6)
    b = simulate_movie(3, (64, 64), seed=5, noise=False, electrode_fraction=0.6, contrast={"electrode": 0.5, "sei": 0.6})
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.sei_thickness_nm, b.sei_thickness_nm)
    assert b.params["contrast"]["electrode"] == 0.5 and b.params["contrast"]["sei"] == 0.6
    assert b.params["contrast"]["electrolyte"] == a.params["contrast"]["electrolyte"]
    # electrode pixels away from the edge ramp are lighter with a thinner electrode
    deep = ndi.binary_erosion(a.masks[0] == 1, iterations=12)  # beyond the edge ramp (3-15 px)
    assert deep.any() and b.frames[0][deep].mean() > a.frames[0][deep].mean()
    c = simulate_movie(1, (32, 32), seed=5, noise=False, contrast={"electrolyte": 0.2})
    assert_allclose(c.params["contrast"]["bg_transmission"], np.exp(-0.2))
    with pytest.raises(ValueError, match="unknown contrast key"):
        simulate_movie(1, (32, 32), seed=5, contrast={"wire": 1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        simulate_movie(1, (32, 32), seed=5, contrast={"sei": -1.0})


def test_electrode_edge_override_gives_a_step_edge_and_changes_nothing_else():
    kw = dict(n_frames=2, shape=(96, 96), seed=6, noise=False, electrode_fraction=0.5, edge_angle_deg=0.0)
    a = simulate_movie(**kw)  # the drawn wedge: 35 % of the electrode's mass-thickness at the edge
    assert a.params["electrode_edge"]["floor"] == 0.35 and 3 <= a.params["electrode_edge"]["ramp_px"] <= 15
    b = simulate_movie(**kw, electrode_edge={"ramp_px": 0.0})
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.sei_thickness_nm, b.sei_thickness_nm)
    assert b.params["electrode_edge"]["ramp_px"] == 0.0 and b.params["contrast"] == a.params["contrast"]
    el = a.masks[0] == 1
    depth = ndi.distance_transform_edt(el)
    deep = depth > 24  # beyond the wedge and the blur: the same full thickness in both
    band = (depth > 4) & (depth <= 6)  # inside the wedge of the drawn edge
    assert deep.any() and band.any()
    assert_allclose(b.frames[0][deep], a.frames[0][deep], rtol=1e-5)
    # the step is as dark at 4-6 px as deep inside (the same transmission up to the blur's tail
    # and the texture); the wedge is lighter there
    ratio_b = b.frames[0][band].mean() / b.frames[0][deep].mean()
    ratio_a = a.frames[0][band].mean() / a.frames[0][deep].mean()
    assert abs(ratio_b - 1) < 0.05 and ratio_a > ratio_b + 0.1
    # a floor of 1 is a step too, whatever the ramp
    c = simulate_movie(**kw, electrode_edge={"ramp_px": 10.0, "floor": 1.0})
    assert_allclose(c.frames, b.frames, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown electrode_edge key"):
        simulate_movie(1, (32, 32), seed=5, electrode_edge={"width": 1.0})
    with pytest.raises(ValueError, match="floor must be in"):
        simulate_movie(1, (32, 32), seed=5, electrode_edge={"floor": 1.5})
    with pytest.raises(ValueError, match="liquid cell only"):
        simulate_movie(1, (32, 32), seed=5, kind="open", electrode_edge={"ramp_px": 0.0})


def test_dissolving_lithium_stays_at_least_a_pixel_wide():
    from mltem.simulate._movie import _Dendrite, _dendrite_state

    d = _Dendrite(pts=np.zeros((3, 2), np.float32), birth=np.zeros(3), radius=np.array([1.2, 2.0, 4.0], np.float32),
                  root_arc=np.array([0.0, 5.0, 10.0]), trunk=np.ones(3, bool), t0=0.0, t_dissolve=1.0, strip_speed=0.1)
    vis, r, attached = _dendrite_state(d, 20.0)
    assert not attached and vis[1:].all()
    assert_allclose(r, [1.0, 1.0, 1.4], rtol=1e-6)  # 0.35 x radius, floored at 1 px


def test_dendrites_grow():
    m = simulate_movie(10, (128, 128), seed=11, n_dendrites=2, n_deposits=0, n_bubbles=0, drift_px=0.0)
    assert m.longest_dendrite_nm[-1] > m.longest_dendrite_nm[0]
    assert m.lithium_area_nm2[-1] > m.lithium_area_nm2[0]


def test_dendrite_truth_counts_what_the_frame_shows():
    from mltem.simulate._movie import _dendrite_truth

    el = np.zeros((64, 64), bool)
    el[40:] = True  # electrode from row 40 down: its surface at y = 39.5
    arc = np.arange(0, 30.0, 0.5)
    up = np.stack([40.5 - arc, np.full_like(arc, 20.0)], 1)  # root 1 px inside, straight up
    tips, lengths = _dendrite_truth([(0, up, arc, 2.0)], el)
    # from the surface (arc 1.0) to the tip (arc 29.5), to half a node step
    assert list(lengths) == [0] and abs(lengths[0] - 28.5) <= 0.25
    assert_allclose(tips[0], up[-1])
    # too short for its root radius: 28.5 px < 4 x 7.5 px
    assert _dendrite_truth([(0, up, arc, 7.5)], el) == ([], {})
    # the trunk runs out of the top of the frame: counted up to its last point inside
    arc2 = np.arange(0, 60.0, 0.5)
    long = np.stack([40.5 - arc2, np.full_like(arc2, 20.0)], 1)
    tips, lengths = _dendrite_truth([(1, long, arc2, 1.0)], el)
    assert abs(lengths[1] - 40.0) <= 0.25 and -0.5 <= tips[0][0] < 0.5
    # rooted outside the frame, entering it already off the electrode: not counted
    side = np.stack([np.full_like(arc, 30.0), -5.0 + arc], 1)
    assert _dendrite_truth([(2, side, arc, 1.0)], el) == ([], {})
    # hidden in lithium of the same contrast (the open cell's source): not counted
    hid = np.zeros_like(el)
    hid[15:25, 15:25] = True
    assert _dendrite_truth([(3, up, arc, 2.0)], el, hidden=hid) == ([], {})


def test_dendrite_lengths_match_the_count_and_grow_at_their_speed():
    m = simulate_movie(10, (128, 128), seed=11, n_dendrites=2, n_deposits=0, n_bubbles=0, drift_px=0.0)
    assert [len(d) for d in m.dendrite_lengths_nm] == m.dendrite_count.tolist()
    assert_allclose([max(d.values(), default=0.0) for d in m.dendrite_lengths_nm], m.longest_dendrite_nm)
    grown = [k for k in m.dendrite_lengths_nm[-1] if k in m.dendrite_lengths_nm[-2]]
    assert grown and all(m.dendrite_lengths_nm[-1][k] >= m.dendrite_lengths_nm[-2][k] for k in grown)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "vacuum"}, "kind must be"),
        ({"n_frames": 0}, "n_frames must be a positive integer"),
        ({"shape": (8, 64)}, "both >= 16"),
        ({"dose": 0.0}, "dose must be > 0"),
        ({"pixel_size_nm": -1.0}, "must be > 0"),
        ({"dark_lithium_probability": 1.5}, "dark_lithium_probability must be in"),
        ({"detector": "sem"}, "detector must be 'bf' or 'haadf'"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"n_frames": 2, "shape": (32, 32), **kwargs}
    n, shape = args.pop("n_frames"), args.pop("shape")
    with pytest.raises(ValueError, match=match):
        simulate_movie(n, shape, **args)
