"""mltem's classical EELS routines against exspy on the real spectra exspy ships.

exspy 0.3 test data: ``tests/components/coreloss_spectrum.msa`` + ``lowloss_spectrum.msa``
(a real Mn/O core-loss with its low-loss, 0.2 eV/ch), ``tests/drawing/data/Cr_L_cl.hspy``
+ ``Cr_L_ll.hspy`` (a real Cr L2,3 pair, 0.1 eV/ch) and the simulated low-loss line scan
with known t/lambda 0.3-1.9 (``tests/signals/data``).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

exspy = pytest.importorskip("exspy")
hs = pytest.importorskip("hyperspy.api")

from mltem.eels import (  # noqa: E402
    fit_power_law,
    fourier_log_deconvolution,
    fourier_ratio_deconvolution,
    thickness_log_ratio,
    white_line_ratio,
)

DATA = Path(exspy.__file__).parent / "tests"
logging.getLogger("exspy").setLevel(logging.ERROR)
logging.getLogger("hyperspy").setLevel(logging.ERROR)


def _load(rel):
    p = DATA / rel
    if not p.is_file():
        pytest.skip(f"exspy test data {rel} not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(p, signal_type="EELS")
    s.axes_manager[-1].is_binned = True
    return s


def _axis(s):
    return np.asarray(s.axes_manager.signal_axes[0].axis, float)


@pytest.mark.parametrize("rel", ["components/lowloss_spectrum.msa", "drawing/data/Cr_L_ll.hspy"])
def test_log_ratio_thickness_matches_exspy(rel):
    ll = _load(rel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thr = float(ll.estimate_elastic_scattering_threshold().data.squeeze())
        ref = float(ll.estimate_thickness(threshold=thr).data.squeeze())
    # same threshold: the same integrals, so the same number
    assert_allclose(thickness_log_ratio(ll.data, _axis(ll), threshold_ev=thr), ref, rtol=1e-3)
    # our own threshold (first minimum after the ZLP) agrees within 3 %
    assert_allclose(thickness_log_ratio(ll.data, _axis(ll)), ref, rtol=0.03)


def test_log_ratio_thickness_on_exspy_linescan_with_known_answer():
    ll = _load("signals/data/EELS_LL_linescan_simulated_thickness_variation.hspy")
    truth = np.linspace(0.3, 1.9, 17)  # the file's title: t/lambda 0.3-1.9 over 17 positions
    ours = thickness_log_ratio(ll.data, _axis(ll))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ll.estimate_thickness(threshold=ll.estimate_elastic_scattering_threshold()).data
    assert_allclose(ours, truth, rtol=0.03)
    assert_allclose(ours, ref, rtol=0.03)


def test_fourier_log_matches_exspy():
    ll = _load("components/lowloss_spectrum.msa")
    e = _axis(ll)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thr = float(ll.estimate_elastic_scattering_threshold().data.squeeze())
    z = ll.deepcopy()
    z.data = np.where(e < thr, ll.data, 0.0)
    ref = ll.fourier_log_deconvolution(z).data
    ours = fourier_log_deconvolution(ll.data, z.data)
    assert_allclose(ours, ref, atol=1e-6 * np.abs(ref).max())


def test_fourier_ratio_matches_exspy_on_cr_l23():
    cl, ll = _load("drawing/data/Cr_L_cl.hspy"), _load("drawing/data/Cr_L_ll.hspy")
    e, ell = _axis(cl), _axis(ll)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cl2 = cl.remove_background(signal_range=(560.0, 570.0), background_type="PowerLaw", fast=True)
        thr = float(ll.estimate_elastic_scattering_threshold().data.squeeze())
        # exspy's power-law extrapolation gives NaN on this background-subtracted edge: off in both
        ref = cl2.fourier_ratio_deconvolution(ll, fwhm=1.0, threshold=thr, extrapolate_lowloss=False, extrapolate_coreloss=False).data
    ours = fourier_ratio_deconvolution(cl2.data, ll.data, e, ell, fwhm_ev=1.0, threshold_ev=thr, extrapolate=False)
    inner = (e > 568) & (e < 595)  # away from the tapered ends
    assert_allclose(ours[inner], ref[inner], rtol=0.02, atol=0.02 * np.abs(ref[inner]).max())
    # and the white-line ratio computed on either is the same
    r1 = white_line_ratio(ours, e, element="Cr", continuum_ev=(8.0, 12.0)).ratio
    r2 = white_line_ratio(ref, e, element="Cr", continuum_ev=(8.0, 12.0)).ratio
    assert_allclose(r1, r2, rtol=0.02)


@pytest.mark.parametrize(
    "rel, window",
    [("components/coreloss_spectrum.msa", (590.0, 632.0)), ("components/coreloss_spectrum.msa", (460.0, 525.0))],
)
def test_power_law_background_matches_exspy_fit(rel, window):
    s = _load(rel)
    e = _axis(s)
    pl = hs.model.components1D.PowerLaw()
    m = s.create_model(auto_background=False, auto_add_edges=False)
    m.append(pl)
    m.set_signal_range(*window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.estimate_parameters(s, *window)
        m.fit()
    _, r_ours = fit_power_law(s.data, e, window_ev=window, weighted=True)
    # exspy fits A E**-r by non-linear least squares on counts; ours is the Poisson-weighted
    # log-linear fit: same model, close weights -> exponents within 2 %
    assert_allclose(r_ours, pl.r.value, rtol=0.02)
