"""The synthetic front movies: shapes, exact positions, masks consistent with positions."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.simulate import FRONT_GEOMETRIES, growth_law, simulate_front_movie


def test_growth_law_known_values():
    assert_allclose(growth_law([0.0, 1.0, 4.0, 9.0], k=3.0, n=0.5, x0=1.0), [1.0, 4.0, 7.0, 10.0])
    # nothing grows before t0
    assert_allclose(growth_law([0.0, 1.0, 3.0], k=2.0, n=1.0, t0=1.0), [0.0, 0.0, 4.0])
    with pytest.raises(ValueError, match="n must be > 0"):
        growth_law([1.0], k=1.0, n=0.0)


@pytest.mark.parametrize("geometry", FRONT_GEOMETRIES)
def test_movie_shapes_and_truth(geometry):
    m = simulate_front_movie(geometry, n_frames=6, shape=(64, 96), seed=1, fluctuation=0.0, n=0.7)
    assert m.frames.shape == (6, 64, 96) and m.frames.dtype == np.float32
    assert m.masks.shape == (6, 64, 96) and m.masks.dtype == np.uint8 and m.masks.max() <= 2
    assert_allclose(m.time_s, np.arange(6) * 0.5)
    # without fluctuations the positions are the growth law exactly
    assert_allclose(m.front_px, growth_law(m.time_s, k=m.params["k_px"], n=0.7))
    assert_allclose(m.front_nm, m.front_px * m.pixel_size_nm)
    # the reacted area grows with the front; frame 0 has none
    reacted = (m.masks == 2).sum(axis=(1, 2))
    assert reacted[0] == 0 and np.all(np.diff(reacted) >= 0) and reacted[-1] > 0


def test_wire_mask_matches_front_along_axis():
    m = simulate_front_movie("wire", n_frames=4, shape=(64, 128), seed=3, drift_px=0.0, bend=0.0, angle_deg=0.0,
                             dose=None, blur_px=0.0)
    y = int(round(m.params["contact_xy"][1]))
    for i in range(1, 4):
        row = m.masks[i, y]
        last_reacted = np.nonzero(row == 2)[0].max()
        # pixel centres at integer x: the last reacted pixel lies within 1 px before the front
        assert m.front_px[i] - 1 <= last_reacted < m.front_px[i]


def test_noise_free_and_seeded():
    a = simulate_front_movie("core-shell", n_frames=3, shape=(48, 48), seed=5)
    b = simulate_front_movie("core-shell", n_frames=3, shape=(48, 48), seed=5)
    assert_allclose(a.frames, b.frames)
    c = simulate_front_movie("core-shell", n_frames=3, shape=(48, 48), seed=5, dose=None)
    assert c.frames.max() < 2.0  # intensities, not counts


@pytest.mark.parametrize("kwargs, match", [
    ({"geometry": "sphere"}, "geometry must be one of"),
    ({"n_frames": 1}, "n_frames must be >= 2"),
    ({"shape": (16, 64)}, "both >= 32"),
    ({"n": 5.0}, "n must lie in"),
    ({"pixel_size_nm": 0.0}, "must be > 0"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_front_movie(**kwargs)


def test_fluctuating_front_is_monotone_and_unbiased():
    from sklearn.isotonic import IsotonicRegression

    from mltem.simulate._fronts import _fluctuating, _non_decreasing

    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(0.2, 1.0, 60))
    y = _non_decreasing(x)
    assert np.all(np.diff(y) >= 0)
    assert_allclose(y, IsotonicRegression().fit_transform(np.arange(60), x), atol=1e-12)
    assert_allclose(_non_decreasing(np.arange(5.0)), np.arange(5.0))
    # the monotone projection keeps the law on average; a running maximum ratchets the front
    # ahead of it (the same fluctuations, AR(1) rho 0.6, 5 %)
    t = np.arange(120.0)
    law = 2.0 * t**0.5
    proj, ratchet = [], []
    for _ in range(300):
        e = np.zeros(t.size)
        z = rng.normal(0, 0.05 * 0.8, t.size)
        for i in range(1, t.size):
            e[i] = 0.6 * e[i - 1] + z[i]
        proj.append(_non_decreasing(law * np.exp(e))[-20:].mean())
        ratchet.append(np.maximum.accumulate(law * np.exp(e))[-20:].mean())
    ref = law[-20:].mean()
    assert abs(np.mean(proj) / ref - 1) < 0.01
    assert np.mean(ratchet) / ref - 1 > 0.02
    # and the simulator uses the projection
    ends = [_fluctuating(t, k=2.0, n=0.5, x0=0.0, t0=0.0, fluctuation=0.05, rng=rng)[-20:].mean() for _ in range(300)]
    assert abs(np.mean(ends) / ref - 1) < 0.01
