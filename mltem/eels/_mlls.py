"""Multiple linear least-squares (MLLS) fitting of reference spectra, with their energy
derivatives so that small energy shifts between references and data are absorbed.

Leapman & Swyt, Ultramicroscopy 26, 393 (1988), :doi:`10.1016/0304-3991(88)90239-2`
(MLLS fitting of reference spectra with first derivatives).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MLLSResult", "mlls_fit"]


@dataclass
class MLLSResult:
    """Component maps of an MLLS fit (arrays shaped (...) or (..., K)).

    Attributes
    ----------
    weights : numpy.ndarray
        (..., K) coefficient of each reference.
    fractions : numpy.ndarray
        (..., K) weights clipped at 0 and normalised to sum 1.
    shifts_ev : numpy.ndarray
        (..., K) energy shift of each reference (positive: data at higher energy), eV;
        NaN without derivatives.
    residual : numpy.ndarray
        (...) root-mean-square residual.
    model : numpy.ndarray
        (..., E) fitted spectra.
    """

    weights: np.ndarray
    fractions: np.ndarray
    shifts_ev: np.ndarray
    residual: np.ndarray
    model: np.ndarray


def mlls_fit(spectra, references, energy_ev, *, derivatives: bool = True, background_order: int = -1, fit_window_ev=None) -> MLLSResult:
    """Fit every spectrum as a linear combination of reference spectra.

    Parameters
    ----------
    spectra : array_like
        (..., E) spectra (background-subtracted unless ``background_order`` >= 0).
    references : array_like
        (K, E) reference spectra on the same energy axis.
    energy_ev : array_like
        (E,), eV.
    derivatives : bool
        Add dR_k/dE to the basis; the shift of reference k is -b_k / a_k
        (first-order Taylor expansion of R_k(E - dE)).
    background_order : int
        Also fit a polynomial background of this order (-1: none).
    fit_window_ev : (float, float), optional
        Fit only inside this energy window, eV.

    Returns
    -------
    MLLSResult
    """
    y = np.asarray(spectra, dtype=float)
    r = np.atleast_2d(np.asarray(references, dtype=float))
    e = np.asarray(energy_ev, dtype=float)
    if r.shape[-1] != e.size or y.shape[-1] != e.size:
        raise ValueError(f"spectra ({y.shape[-1]}), references ({r.shape[-1]}) and energy_ev ({e.size}) must share the energy axis")
    k = r.shape[0]
    cols = [r]
    if derivatives:
        cols.append(np.gradient(r, e, axis=-1))
    if background_order >= 0:
        x = (e - e.mean()) / max(np.ptp(e), 1e-12)
        cols.append(np.stack([x**p for p in range(background_order + 1)]))
    basis = np.concatenate(cols, 0)  # (P, E)
    sel = np.ones(e.size, bool) if fit_window_ev is None else (e >= fit_window_ev[0]) & (e <= fit_window_ev[1])
    if sel.sum() < basis.shape[0]:
        raise ValueError(f"the fit window holds {int(sel.sum())} channels for {basis.shape[0]} basis functions")
    flat = y.reshape(-1, e.size)
    coef, *_ = np.linalg.lstsq(basis[:, sel].T, flat[:, sel].T, rcond=None)  # (P, N)
    coef = coef.T
    model = coef @ basis
    resid = np.sqrt(np.mean((flat[:, sel] - model[:, sel]) ** 2, axis=-1))
    w = coef[:, :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts = -coef[:, k : 2 * k] / w if derivatives else np.full_like(w, np.nan)
        pos = np.clip(w, 0, None)
        frac = pos / pos.sum(-1, keepdims=True)
    lead = y.shape[:-1]
    return MLLSResult(w.reshape(*lead, k), frac.reshape(*lead, k), shifts.reshape(*lead, k), resid.reshape(lead), model.reshape(y.shape))
