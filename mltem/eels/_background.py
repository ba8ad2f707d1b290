"""Power-law background A * E**-r fitted in a pre-edge window, vectorised over spectra.

The fit is linear least squares on log I = log A - r log E (all spectra at once, in
closed form), optionally refined by Poisson-weighted least squares (weights = model
counts, the inverse variance of log I for counting noise). Egerton, *Electron
Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed., Springer 2011, sec. 4.4.2.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fit_power_law", "power_law", "subtract_background"]


def _check_axis(spectra: np.ndarray, energy_ev: np.ndarray) -> None:
    if energy_ev.ndim != 1 or energy_ev.size != spectra.shape[-1]:
        raise ValueError(f"energy_ev must be 1D with {spectra.shape[-1]} values (the last axis of spectra), got shape {energy_ev.shape}")
    if energy_ev.size > 1 and not np.all(np.diff(energy_ev) > 0):
        raise ValueError("energy_ev must increase strictly")


def power_law(energy_ev, amplitude, exponent) -> np.ndarray:
    """Evaluate A * E**-r.

    Parameters
    ----------
    energy_ev : array_like
        Energies (E,), eV; must be positive.
    amplitude, exponent : array_like
        A and r, shape (...) (broadcast against the leading axes).

    Returns
    -------
    numpy.ndarray
        (..., E).
    """
    e = np.asarray(energy_ev, dtype=float)
    a = np.asarray(amplitude, dtype=float)[..., None]
    r = np.asarray(exponent, dtype=float)[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        return a * np.exp(-r * np.log(e))


def fit_power_law(spectra, energy_ev, *, window_ev: tuple[float, float], weighted: bool = False, iterations: int = 2):
    """Fit A * E**-r to every spectrum in an energy window.

    Parameters
    ----------
    spectra : array_like
        Counts, (..., E) (one spectrum, a line scan or a spectrum image).
    energy_ev : array_like
        Energy axis (E,), eV, increasing and positive in the window.
    window_ev : (float, float)
        Fit window (start, stop), eV.
    weighted : bool
        Refine with Poisson weights (weights = current model counts). Less biased at
        low counts than the unweighted log fit.
    iterations : int
        Weighted refinement steps.

    Returns
    -------
    amplitude, exponent : numpy.ndarray
        A and r, each (...), float64. Spectra whose window holds no positive counts
        give NaN.

    Examples
    --------
    >>> e = np.linspace(500, 700, 201)
    >>> a, r = fit_power_law(1e9 * e**-3.0, e, window_ev=(500, 600))
    >>> round(float(r), 6)
    3.0
    """
    y = np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    _check_axis(y, e)
    lo, hi = (float(v) for v in window_ev)
    sel = (e >= lo) & (e <= hi)
    if sel.sum() < 3:
        raise ValueError(f"the window {lo}-{hi} eV holds {int(sel.sum())} channels; need at least 3")
    if e[sel].min() <= 0:
        raise ValueError("a power law needs positive energies in the window")
    x = np.log(e[sel])
    ys = y[..., sel]
    pos = ys > 0
    ly = np.log(np.where(pos, ys, 1.0))
    w = pos.astype(float)
    a, r = _wlsq(x, ly, w)
    if weighted:
        for _ in range(max(1, iterations)):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                model = np.exp(np.log(a)[..., None] - r[..., None] * x)
            model = np.nan_to_num(model, nan=0.0, posinf=0.0)
            a, r = _wlsq(x, ly, w * np.clip(model, 1e-12, None))
    bad = pos.sum(-1) < 3
    a = np.where(bad, np.nan, a)
    r = np.where(bad, np.nan, r)
    return a, r


def _wlsq(x: np.ndarray, ly: np.ndarray, w: np.ndarray):
    """Weighted straight-line fit ly = c - r x along the last axis (closed form)."""
    sw = w.sum(-1)
    sw = np.where(sw > 0, sw, np.nan)
    mx = (w * x).sum(-1) / sw
    my = (w * ly).sum(-1) / sw
    dx = x - mx[..., None]
    sxx = (w * dx * dx).sum(-1)
    sxy = (w * dx * (ly - my[..., None])).sum(-1)
    slope = sxy / np.where(sxx > 0, sxx, np.nan)
    c = my - slope * mx
    with np.errstate(over="ignore"):  # nonsense fits (no decaying background) give inf: callers fall back
        return np.exp(c), -slope


def subtract_background(spectra, energy_ev, *, window_ev: tuple[float, float], weighted: bool = False, mode: str = "power_law"):
    """Subtract a pre-edge background from every spectrum.

    Parameters
    ----------
    spectra : array_like
        (..., E) counts.
    energy_ev : array_like
        (E,), eV.
    window_ev : (float, float)
        Pre-edge window, eV.
    weighted : bool
        Poisson-weighted refinement of the power-law fit.
    mode : {"power_law", "constant", "auto"}
        ``"constant"`` subtracts the window mean (for spectra whose background was
        already removed); ``"auto"`` uses the power law where the window mean is positive
        and at least 2 % of the spectrum's maximum, the constant elsewhere.

    Returns
    -------
    signal : numpy.ndarray
        (..., E) background-subtracted spectra, float64.
    background : numpy.ndarray
        (..., E) the subtracted background.
    """
    if mode not in ("power_law", "constant", "auto"):
        raise ValueError(f"mode must be 'power_law', 'constant' or 'auto', got {mode!r}")
    y = np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    _check_axis(y, e)
    sel = (e >= window_ev[0]) & (e <= window_ev[1])
    const = np.broadcast_to(y[..., sel].mean(-1, keepdims=True), y.shape)
    if mode == "constant":
        return y - const, np.array(const)
    a, r = fit_power_law(y, e, window_ev=window_ev, weighted=weighted)
    bg = power_law(e, a, r)
    if mode == "auto":
        peak = np.abs(y).max(-1, keepdims=True)
        use_pl = (const > 0.02 * peak) & np.isfinite(bg).all(-1, keepdims=True)
        bg = np.where(use_pl, bg, const)
    bg = np.where(np.isfinite(bg), bg, const)
    return y - bg, bg
