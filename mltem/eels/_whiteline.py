"""L3 onset and peak energies and the L3/L2 white-line ratio, vectorised over spectra.

The white-line ratio uses the Pearson double-step continuum: two steps at the L3 and
L2 maxima with heights in the ratio 2:1 (the 2p3/2 : 2p1/2 occupancy), scaled to the
continuum measured beyond the L2 edge; the white-line intensities are the areas above
the steps. Pearson, Ahn & Fultz, Phys. Rev. B 47, 8471 (1993),
:doi:`10.1103/PhysRevB.47.8471`; Pearson et al., Phys. Rev. B 40, 8 (1989).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mltem.eels._edges import get_edge

__all__ = ["EdgePositions", "find_l3", "double_step", "white_line_ratio", "WhiteLineResult"]


@dataclass
class EdgePositions:
    """Onset and peak energies of the L3 white line, per spectrum.

    Attributes
    ----------
    onset_ev : numpy.ndarray
        (...) energy where the smoothed, background-subtracted signal first reaches
        ``onset_fraction`` of the L3 maximum on its rising side, eV.
    peak_ev : numpy.ndarray
        (...) energy of the L3 maximum (parabolic interpolation), eV.
    height : numpy.ndarray
        (...) smoothed L3 peak height (input units).
    """

    onset_ev: np.ndarray
    peak_ev: np.ndarray
    height: np.ndarray


def _uniform(energy_ev) -> tuple[np.ndarray, float]:
    e = np.asarray(energy_ev, dtype=float)
    if e.ndim != 1 or e.size < 4:
        raise ValueError(f"energy_ev must be 1D with at least 4 channels, got shape {e.shape}")
    d = np.diff(e)
    if d[0] <= 0 or not np.allclose(d, d[0], rtol=1e-4):
        raise ValueError("energy_ev must be uniform and increasing")
    return e, float(d[0])


def find_l3(signal, energy_ev, *, element: str, search_ev: tuple[float, float] | None = None, onset_fraction: float = 0.1, smooth_ev: float = 0.4) -> EdgePositions:
    """Locate the L3 white line of background-subtracted spectra.

    Parameters
    ----------
    signal : array_like
        (..., E) background-subtracted spectra.
    energy_ev : array_like
        (E,), eV, uniform.
    element : str
        Sets the default search window: tabulated L3 onset -10 eV to half the
        spin-orbit splitting + 3 eV above it (tolerates calibration errors of several
        eV; where the L3 leaves the window the onset is still found on its rising side).
    search_ev : (float, float), optional
        Override of the window, eV.
    onset_fraction : float
        Fraction of the L3 maximum that defines the onset (0 < f < 1).
    smooth_ev : float
        Gaussian smoothing sigma, eV, applied before the search (noise).

    Returns
    -------
    EdgePositions
    """
    if not 0 < onset_fraction < 1:
        raise ValueError(f"onset_fraction must lie in (0, 1), got {onset_fraction}")
    y = np.asarray(signal, dtype=float)
    e, de = _uniform(energy_ev)
    if y.shape[-1] != e.size:
        raise ValueError(f"signal has {y.shape[-1]} channels but energy_ev {e.size}")
    edge = get_edge(element)
    lo, hi = search_ev if search_ev is not None else (edge.onset_ev - 10.0, edge.onset_ev + 0.5 * edge.spin_orbit_ev + 3.0)
    ys = gaussian_filter1d(y, max(smooth_ev / de, 1e-3), axis=-1, mode="nearest") if smooth_ev > 0 else y
    inside = (e >= lo) & (e <= hi)
    if inside.sum() < 3:
        raise ValueError(f"the L3 search window {lo:.1f}-{hi:.1f} eV lies outside the spectrum ({e[0]:.1f}-{e[-1]:.1f} eV)")
    masked = np.where(inside, ys, -np.inf)
    i = np.argmax(masked, axis=-1)
    h = np.take_along_axis(ys, i[..., None], -1)[..., 0]
    ic = np.clip(i, 1, e.size - 2)
    ym = np.take_along_axis(ys, (ic - 1)[..., None], -1)[..., 0]
    y0 = np.take_along_axis(ys, ic[..., None], -1)[..., 0]
    yp = np.take_along_axis(ys, (ic + 1)[..., None], -1)[..., 0]
    den = ym - 2 * y0 + yp
    frac = np.where(den < 0, 0.5 * (ym - yp) / np.where(den < 0, den, -1.0), 0.0)
    peak = e[0] + (ic + np.clip(frac, -0.5, 0.5)) * de
    # onset: last channel before the peak below f * height, interpolated to the crossing
    idx = np.arange(e.size)
    below = (ys < onset_fraction * h[..., None]) & (idx <= i[..., None]) & (e >= lo - 10.0)
    k = np.where(below, idx, -1).max(-1)
    k = np.clip(k, 0, e.size - 2)
    y_k = np.take_along_axis(ys, k[..., None], -1)[..., 0]
    y_k1 = np.take_along_axis(ys, (k + 1)[..., None], -1)[..., 0]
    t = np.clip(np.where(y_k1 != y_k, (onset_fraction * h - y_k) / np.where(y_k1 != y_k, y_k1 - y_k, 1.0), 0.0), 0, 1)
    onset = e[0] + (k + t) * de
    bad = ~(h > 0)
    return EdgePositions(np.where(bad, np.nan, onset), np.where(bad, np.nan, peak), h)


def double_step(energy_ev, l3_ev, l2_ev, height, *, width_ev: float = 0.0) -> np.ndarray:
    """Pearson double-step continuum: steps at L3 and L2 with heights 2/3 and 1/3 of ``height``.

    Parameters
    ----------
    energy_ev : array_like
        (E,), eV.
    l3_ev, l2_ev, height : array_like
        (...) step positions (eV) and total height above the L2 edge.
    width_ev : float
        0 for sharp (Heaviside) steps, else the arctangent broadening, eV.

    Returns
    -------
    numpy.ndarray
        (..., E).
    """
    e = np.asarray(energy_ev, dtype=float)
    l3 = np.asarray(l3_ev, float)[..., None]
    l2 = np.asarray(l2_ev, float)[..., None]
    h = np.asarray(height, float)[..., None]

    def step(x0):
        if width_ev > 0:
            return 0.5 + np.arctan((e - x0) / width_ev) / np.pi
        return (e >= x0).astype(float)

    return h * (2.0 / 3.0 * step(l3) + 1.0 / 3.0 * step(l2))


@dataclass
class WhiteLineResult:
    """White-line intensities and ratio, per spectrum (all arrays shaped (...)).

    Attributes
    ----------
    ratio : numpy.ndarray
        L3/L2 white-line intensity ratio.
    l3_area, l2_area : numpy.ndarray
        Areas above the continuum (input units x eV).
    l3_ev, l2_ev : numpy.ndarray
        Peak energies used for the steps, eV.
    continuum : numpy.ndarray
        Continuum height beyond L2.
    onset_ev : numpy.ndarray
        L3 onset, eV.
    """

    ratio: np.ndarray
    l3_area: np.ndarray
    l2_area: np.ndarray
    l3_ev: np.ndarray
    l2_ev: np.ndarray
    continuum: np.ndarray
    onset_ev: np.ndarray


def white_line_ratio(
    signal,
    energy_ev,
    *,
    element: str,
    positions: EdgePositions | None = None,
    l3_window_ev: float = 4.0,
    l2_window_ev: float = 5.0,
    continuum_ev: tuple[float, float] = (12.0, 22.0),
    step_width_ev: float = 0.0,
) -> WhiteLineResult:
    """L3/L2 white-line ratio with the continuum removed (Pearson double step).

    Parameters
    ----------
    signal : array_like
        (..., E) background-subtracted (ideally deconvolved) spectra.
    energy_ev : array_like
        (E,), eV, uniform.
    element : str
        For the spin-orbit splitting and search windows.
    positions : EdgePositions, optional
        Precomputed :func:`find_l3` result.
    l3_window_ev : float
        The L3 area runs from (L3 peak - ``l3_window_ev``) to the midpoint between the
        L3 and L2 peaks, eV.
    l2_window_ev : float
        The L2 area runs from the midpoint to (L2 peak + ``l2_window_ev``), eV.
    continuum_ev : (float, float)
        Window after the L2 peak where the continuum height is measured (mean), eV.
    step_width_ev : float
        Broadening of the steps (0: sharp, as Pearson).

    Returns
    -------
    WhiteLineResult
    """
    y = np.asarray(signal, dtype=float)
    e, de = _uniform(energy_ev)
    edge = get_edge(element)
    so = edge.spin_orbit_ev
    pos = positions if positions is not None else find_l3(y, e, element=element)
    l3 = pos.peak_ev
    # L2 maximum: highest smoothed point within +-2.5 eV of L3 + spin-orbit splitting
    ys = gaussian_filter1d(y, max(0.4 / de, 1e-3), axis=-1, mode="nearest")
    near = np.abs(e - (np.nan_to_num(l3) + so)[..., None]) <= 2.5
    j = np.argmax(np.where(near, ys, -np.inf), -1)
    l2 = np.where(near.any(-1), e[j], np.nan_to_num(l3) + so)
    l2 = np.where(np.isfinite(l3), l2, np.nan)
    c_lo = (l2 + continuum_ev[0])[..., None]
    c_hi = (l2 + continuum_ev[1])[..., None]
    cwin = (e >= c_lo) & (e <= c_hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        cont = np.where(cwin, y, 0).sum(-1) / cwin.sum(-1)
        steps = double_step(e, l3, l2, cont, width_ev=step_width_ev)
        above = y - steps
        mid = 0.5 * (l3 + l2)[..., None]
        w3 = (e >= (l3 - l3_window_ev)[..., None]) & (e < mid)
        w2 = (e >= mid) & (e <= (l2 + l2_window_ev)[..., None])
        a3 = np.where(w3, above, 0).sum(-1) * de
        a2 = np.where(w2, above, 0).sum(-1) * de
        ratio = a3 / a2
    ratio = np.where((a2 > 0) & np.isfinite(l3), ratio, np.nan)
    return WhiteLineResult(ratio, a3, a2, l3, l2, cont, pos.onset_ev)
