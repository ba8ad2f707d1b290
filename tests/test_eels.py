"""Classical EELS routines: known answers from the forward model (mltem.simulate)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem import MltemError
from mltem.eels import (
    background_window,
    double_step,
    elastic_threshold,
    extract_zlp,
    find_l3,
    fit_power_law,
    fourier_log_deconvolution,
    fourier_ratio_deconvolution,
    get_edge,
    mlls_fit,
    pca_denoise,
    power_law,
    shift_from_edge,
    shift_from_zlp,
    shift_spectra,
    subtract_background,
    thickness_log_ratio,
    white_line_ratio,
    zlp_centre,
)
from mltem.simulate import L23Params, element_model, simulate_l23, simulate_low_loss

E_MN = 600.0 + 0.1 * np.arange(900)


# -- background ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_power_law_exponent_noise_free(dtype, shape):
    rng = np.random.default_rng(0)
    r = rng.uniform(2.5, 4.5, shape)
    a = 1e12 * np.ones(shape)
    y = power_law(E_MN, a, r).astype(dtype)
    a_fit, r_fit = fit_power_law(y, E_MN, window_ev=(600, 635))
    assert r_fit.shape == shape and r_fit.dtype == np.float64
    # float32 rounding of counts ~1e3-1e4 gives ~1e-7 relative errors in log I
    assert_allclose(r_fit, r, rtol=1e-4)


@pytest.mark.parametrize("weighted", [False, True])
def test_power_law_exponent_with_poisson_noise_within_2_percent(weighted):
    rng = np.random.default_rng(1)
    r = 3.2
    e = 500.0 + 0.1 * np.arange(1500)
    lam = power_law(e, 2e4 * 520.0**r, r)  # 2e4 counts/channel at 520 eV
    y = rng.poisson(np.broadcast_to(lam, (64, e.size))).astype(float)
    _, r_fit = fit_power_law(y, e, window_ev=(520, 635), weighted=weighted)
    # sigma(r) ~ sigma(log I) / (sqrt(N) std(log E)) = 0.009 / (34 x 0.057) ~ 0.5 %: 2 % is 4 sigma
    assert np.all(np.abs(r_fit / r - 1) < 0.02)
    assert abs(np.mean(r_fit) / r - 1) < 0.005


def test_subtract_background_leaves_the_edge():
    edge = simulate_l23(E_MN, "Mn", [0, 0, 1])
    bg = power_law(E_MN, 30 * 640.0**3, 3.0)
    sig, fitted = subtract_background(edge + bg, E_MN, window_ev=background_window("Mn", E_MN))
    assert_allclose(fitted, bg, rtol=2e-3)
    assert_allclose(sig[E_MN < 630], 0, atol=1e-2)
    # an already background-subtracted spectrum: 'auto' subtracts only the (zero) offset
    sig2, _ = subtract_background(edge, E_MN, window_ev=(600, 632), mode="auto")
    assert_allclose(sig2, edge - edge[E_MN <= 632].mean(), atol=1e-9)


def test_background_errors():
    with pytest.raises(ValueError, match="holds 0 channels"):
        fit_power_law(np.ones(900), E_MN, window_ev=(10, 20))
    with pytest.raises(ValueError, match="energy_ev must be 1D with 900"):
        fit_power_law(np.ones(900), E_MN[:10], window_ev=(600, 630))
    with pytest.raises(ValueError, match="mode must be"):
        subtract_background(np.ones(900), E_MN, window_ev=(600, 630), mode="spline")
    with pytest.raises(MltemError, match="narrower than"):
        background_window("Mn", 635 + 0.1 * np.arange(100))
    with pytest.raises(MltemError, match="two increasing energies"):
        background_window("Mn", window_ev=(630, 620))
    with pytest.raises(MltemError, match="no edge data for element 'Xx'"):
        get_edge("Xx")


# -- thickness and deconvolution -------------------------------------------------------
E_LL = -20.0 + 0.1 * np.arange(2048)


@pytest.mark.parametrize("t", [0.2, 0.5, 1.0, 1.5])
def test_log_ratio_thickness_within_3_percent(t):
    ll = simulate_low_loss(E_LL, t, resolution_ev=0.8, plasmon_ev=22.0)
    assert_allclose(thickness_log_ratio(ll, E_LL), t, rtol=0.03)
    assert abs(zlp_centre(ll, E_LL)) < 0.05
    assert 1.0 < elastic_threshold(ll, E_LL) < 8.0


def test_log_ratio_thickness_vectorised_with_noise():
    rng = np.random.default_rng(2)
    t = np.array([[0.3, 0.6], [0.9, 1.2]])
    ll = simulate_low_loss(E_LL, t.ravel(), counts=1e6, rng=rng).reshape(2, 2, -1)
    assert_allclose(thickness_log_ratio(ll, E_LL), t, rtol=0.03)


def test_fourier_log_recovers_single_scattering():
    t = 0.8
    ll = simulate_low_loss(E_LL, t)
    z = extract_zlp(ll, E_LL)
    ssd = fourier_log_deconvolution(ll, z)
    # area of the single-scattering distribution = t * I0 (Egerton eq. 4.11)
    assert_allclose(ssd[E_LL > 3].sum() / z.sum(), t, rtol=0.03)
    # no plural plasmon at 2 Ep beyond the Poisson-free single distribution's tail
    assert ssd[(E_LL > 40) & (E_LL < 50)].max() < 0.1 * ssd[(E_LL > 18) & (E_LL < 26)].max()


def test_fourier_ratio_removes_plural_scattering():
    e = 560.0 + 0.1 * np.arange(1500)  # the tapered last 2 % stay clear of the edge
    p_thin = L23Params.fixed(1, t_lambda=0.0, resolution_ev=0.8)
    p_thick = L23Params.fixed(1, t_lambda=0.7, resolution_ev=0.8)
    thin = simulate_l23(e, "Mn", [0, 1, 0], p_thin)
    thick = simulate_l23(e, "Mn", [0, 1, 0], p_thick)
    ell = -20.0 + 0.1 * np.arange(1024)
    ll = simulate_low_loss(ell, 0.7, resolution_ev=0.8)
    ssd = fourier_ratio_deconvolution(thick, ll, e, ell, fwhm_ev=0.8, extrapolate=False)
    win = (e > 630) & (e < 665)
    i0 = ll[ell < elastic_threshold(ll, ell)].sum()
    # exspy's convention: the result is scaled by I0 per channel width
    assert_allclose(ssd[win] * 0.1 / i0, thin[win], atol=0.02 * thin.max())
    assert np.abs(thick[win] - thin[win]).max() > 0.1 * thin.max()  # the plural scattering was there


def test_deconvolution_errors():
    with pytest.raises(ValueError, match="share the energy axis"):
        fourier_log_deconvolution(np.ones(100), np.ones(50))
    with pytest.raises(ValueError, match="same channel width"):
        fourier_ratio_deconvolution(np.ones(100), np.ones(100), np.arange(100.0), np.arange(100) * 0.5)
    with pytest.raises(ValueError, match="uniform and increasing"):
        thickness_log_ratio(np.ones(10), np.r_[np.arange(9.0), 20.0])


# -- white lines ----------------------------------------------------------------------
@pytest.mark.parametrize("element", ["Mn", "Fe", "Co", "Ni"])
def test_white_line_ratio_within_5_percent(element):
    m = element_model(element)
    l3 = m.states[0].l3_ev
    e = np.arange(l3 - 40, l3 + m.spin_orbit_ev + 45, 0.1)
    for k, st in enumerate(m.states):
        f = np.eye(len(m.states))[k]
        s = simulate_l23(e, element, f, L23Params.fixed(1, resolution_ev=0.4))
        wl = white_line_ratio(s, e, element=element)
        assert abs(float(wl.ratio) / st.ratio - 1) < 0.05, (element, st.valence, float(wl.ratio), st.ratio)
        from mltem.simulate._eels import _line_max

        assert abs(float(wl.l3_ev) - (st.l3_ev + _line_max(st.l3_lines, 0.4))) < 0.15  # 0.4 eV smoothing


def test_white_line_ratio_with_background_and_noise_vectorised():
    rng = np.random.default_rng(3)
    n = 16
    p = L23Params.fixed(n, resolution_ev=0.5, background_ratio=5.0, counts=2000.0)
    s = simulate_l23(E_MN, "Mn", np.tile([0, 0, 1.0], (n, 1)), p, rng=rng).reshape(4, 4, -1)
    sig, _ = subtract_background(s, E_MN, window_ev=background_window("Mn", E_MN))
    wl = white_line_ratio(sig, E_MN, element="Mn")
    assert wl.ratio.shape == (4, 4)
    assert abs(np.median(wl.ratio) / 1.9 - 1) < 0.05


def test_find_l3_onset_moves_with_the_calibration():
    s0 = simulate_l23(E_MN, "Mn", [1, 0, 0])
    s1 = simulate_l23(E_MN, "Mn", [1, 0, 0], L23Params.fixed(1, offset_ev=3.0))
    p0, p1 = find_l3(s0, E_MN, element="Mn"), find_l3(s1, E_MN, element="Mn")
    assert_allclose(p1.onset_ev - p0.onset_ev, 3.0, atol=0.05)
    assert_allclose(p1.peak_ev - p0.peak_ev, 3.0, atol=0.05)
    assert p0.onset_ev < p0.peak_ev
    # calibration from a known edge undoes the offset
    assert_allclose(shift_from_edge(s1, E_MN, element="Mn", reference_ev=float(p0.onset_ev)), -3.0, atol=0.05)
    with pytest.raises(ValueError, match="onset_fraction"):
        find_l3(s0, E_MN, element="Mn", onset_fraction=1.5)
    with pytest.raises(ValueError, match="outside the spectrum"):
        find_l3(s0, E_MN, element="Cu")
    with pytest.raises(ValueError, match="kind must be"):
        shift_from_edge(s0, E_MN, element="Mn", reference_ev=640, kind="middle")


def test_double_step_heights_two_to_one():
    st = double_step(E_MN, 640.0, 651.0, 3.0)
    assert_allclose(st[E_MN < 639], 0)
    assert_allclose(st[(E_MN > 641) & (E_MN < 650)], 2.0)
    assert_allclose(st[E_MN > 652], 3.0)


# -- MLLS, calibration, PCA -------------------------------------------------------------
def test_mlls_recovers_fractions_and_small_shifts():
    refs = np.stack([simulate_l23(E_MN, "Mn", f) for f in np.eye(3)])
    w = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]])
    y = w @ refs
    res = mlls_fit(y, refs, E_MN)
    assert_allclose(res.weights, w, atol=1e-6)
    assert_allclose(res.fractions.sum(-1), 1)
    shifted = shift_spectra(y[1], E_MN, 0.15)
    res2 = mlls_fit(shifted, refs, E_MN, fit_window_ev=(630, 670))
    assert_allclose(res2.shifts_ev[0], 0.15, atol=0.03)
    assert res2.fractions[0] > 0.93  # first-order Taylor expansion of a 0.15 eV shift
    with pytest.raises(ValueError, match="share the energy axis"):
        mlls_fit(y, refs[:, :10], E_MN)
    with pytest.raises(ValueError, match="basis functions"):
        mlls_fit(y, refs, E_MN, fit_window_ev=(600, 600.3))


def test_zlp_calibration_and_shift_round_trip():
    ll = simulate_low_loss(E_LL, 0.4, zlp_ev=1.37)
    assert_allclose(shift_from_zlp(ll, E_LL), -1.37, atol=0.02)
    s = simulate_l23(E_MN, "Mn", [0, 1, 0])
    back = shift_spectra(shift_spectra(s, E_MN, 2.0), E_MN, -2.0)
    inner = (E_MN > 610) & (E_MN < 680)
    assert_allclose(back[inner], s[inner], atol=0.01 * s.max())


def test_pca_denoise_reduces_noise():
    rng = np.random.default_rng(4)
    f = rng.dirichlet([1, 1, 1], 200)
    clean = simulate_l23(E_MN, "Mn", f) * 200
    noisy = rng.poisson(clean).astype(float)
    den = pca_denoise(noisy.reshape(10, 20, -1), 4).reshape(200, -1)
    assert np.mean((den - clean) ** 2) < 0.3 * np.mean((noisy - clean) ** 2)
    with pytest.raises(ValueError, match="n_components must lie"):
        pca_denoise(noisy[:3], 5)
