"""Plural-scattering removal and relative thickness, vectorised over spectra.

Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer 2011, sec. 4.2 (Fourier-log), 4.3 (Fourier-ratio) and 5.1 (log-ratio t/lambda).
The Fourier-log routine follows exspy's ``EELSSpectrum.fourier_log_deconvolution``
(same tapering and padding) so that both give the same numbers; the tests check it.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "hanning_taper",
    "zlp_centre",
    "elastic_threshold",
    "thickness_log_ratio",
    "fourier_log_deconvolution",
    "fourier_ratio_deconvolution",
    "extract_zlp",
]


def _scale(energy_ev) -> tuple[np.ndarray, float]:
    e = np.asarray(energy_ev, dtype=float)
    if e.ndim != 1 or e.size < 8:
        raise ValueError(f"energy_ev must be 1D with at least 8 channels, got shape {e.shape}")
    d = np.diff(e)
    if not np.allclose(d, d[0], rtol=1e-4, atol=1e-9) or d[0] <= 0:
        raise ValueError("energy_ev must be uniform and increasing")
    return e, float(d[0])


def hanning_taper(spectra, *, channels: int | None = None) -> tuple[np.ndarray, int]:
    """Taper both ends of each spectrum to zero with half Hann windows.

    Parameters
    ----------
    spectra : array_like
        (..., E).
    channels : int, optional
        Taper length; default max(20, 2 % of E) (as hyperspy).

    Returns
    -------
    tapered : numpy.ndarray
        (..., E) float64 copy.
    channels : int
    """
    y = np.array(spectra, dtype=float)
    n = y.shape[-1]
    c = channels if channels is not None else max(20, int(round(n * 0.02)))
    if not 0 < c <= n // 2:
        raise ValueError(f"taper of {c} channels does not fit {n} channels")
    w = np.hanning(2 * c)
    y[..., :c] *= w[:c]
    y[..., -c:] *= w[-c:]
    return y, c


def zlp_centre(low_loss, energy_ev, *, search_ev: tuple[float, float] = (-10.0, 10.0)) -> np.ndarray:
    """Energy of the zero-loss peak maximum (parabolic sub-channel interpolation).

    Parameters
    ----------
    low_loss : array_like
        (..., E) low-loss spectra including the zero-loss peak.
    energy_ev : array_like
        (E,), eV.
    search_ev : (float, float)
        Where to look for the peak, eV (in thick areas the plasmon is higher than the
        zero-loss peak); the whole axis if the window holds fewer than 3 channels.

    Returns
    -------
    numpy.ndarray
        (...) ZLP centre, eV.
    """
    y = np.asarray(low_loss, dtype=float)
    e, de = _scale(energy_ev)
    win = (e >= search_ev[0]) & (e <= search_ev[1])
    if win.sum() < 3:
        win = np.ones_like(win)
    i = np.clip(np.argmax(np.where(win, y, -np.inf), axis=-1), 1, y.shape[-1] - 2)
    ym = np.take_along_axis(y, (i - 1)[..., None], -1)[..., 0]
    y0 = np.take_along_axis(y, i[..., None], -1)[..., 0]
    yp = np.take_along_axis(y, (i + 1)[..., None], -1)[..., 0]
    den = ym - 2 * y0 + yp
    frac = np.where(den < 0, 0.5 * (ym - yp) / np.where(den < 0, den, -1.0), 0.0)
    return e[0] + (i + np.clip(frac, -0.5, 0.5)) * de


def elastic_threshold(low_loss, energy_ev, *, window_ev: float = 12.0, smooth_ev: float = 0.5) -> np.ndarray:
    """End of the zero-loss peak: the first minimum of the smoothed low-loss after it.

    Parameters
    ----------
    low_loss : array_like
        (..., E).
    energy_ev : array_like
        (E,), eV.
    window_ev : float
        Search window after the ZLP centre, eV.
    smooth_ev : float
        Gaussian smoothing (sigma) before the search, eV.

    Returns
    -------
    numpy.ndarray
        (...) threshold energy, eV.
    """
    y = np.asarray(low_loss, dtype=float)
    e, de = _scale(energy_ev)
    c = zlp_centre(y, e)
    ys = gaussian_filter1d(y, max(smooth_ev / de, 1e-3), axis=-1, mode="nearest")
    rel = e - c[..., None]
    inside = (rel > 2 * de) & (rel <= window_ev)
    # first local minimum: where the smoothed slope turns positive
    slope = np.diff(ys, axis=-1, append=ys[..., -1:])
    rising = inside & (slope > 0)
    has = rising.any(-1)
    first = np.argmax(rising, axis=-1)
    # no minimum: the flattest point (inflexion), as exspy
    fallback = np.argmin(np.where(inside, np.abs(slope), np.inf), axis=-1)
    idx = np.where(has, first, fallback)
    return e[idx]


def thickness_log_ratio(low_loss, energy_ev, *, threshold_ev=None) -> np.ndarray:
    """Relative thickness t/lambda = ln(I_t / I_0) by the log-ratio method.

    Parameters
    ----------
    low_loss : array_like
        (..., E) low-loss spectra with the whole zero-loss peak.
    energy_ev : array_like
        (E,), eV.
    threshold_ev : float or array_like, optional
        Upper end of the zero-loss integral I_0, eV (scalar or (...)); default
        :func:`elastic_threshold`.

    Returns
    -------
    numpy.ndarray
        (...) t/lambda (dimensionless).

    References
    ----------
    Malis, Cheng & Egerton, J. Electron Microsc. Tech. 8, 193 (1988),
    :doi:`10.1002/jemt.1060080206`.
    """
    y = np.asarray(low_loss, dtype=float)
    e, de = _scale(energy_ev)
    thr = elastic_threshold(y, e) if threshold_ev is None else np.broadcast_to(np.asarray(threshold_ev, float), y.shape[:-1])
    i0 = np.where(e[None, :] < np.asarray(thr)[..., None], y, 0.0).sum(-1) if y.ndim > 1 else y[e < thr].sum()
    it = y.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(it / i0)


def extract_zlp(low_loss, energy_ev, *, threshold_ev=None) -> np.ndarray:
    """The zero-loss part of low-loss spectra: the data up to the elastic threshold, zero after.

    Returns
    -------
    numpy.ndarray
        (..., E).
    """
    y = np.asarray(low_loss, dtype=float)
    e, _ = _scale(energy_ev)
    thr = elastic_threshold(y, e) if threshold_ev is None else np.broadcast_to(np.asarray(threshold_ev, float), y.shape[:-1])
    return np.where(e < np.asarray(thr)[..., None], y, 0.0)


def fourier_log_deconvolution(spectra, zlp, *, add_zlp: bool = False) -> np.ndarray:
    """Single-scattering distribution of low-loss spectra by Fourier-log deconvolution.

    S(nu) = Z(nu) ln(J(nu) / Z(nu)), with J the tapered spectrum and Z the zero-loss
    peak (both on the same channels), zero-padded to avoid wrap-around.

    Parameters
    ----------
    spectra : array_like
        (..., E) spectra (same energy axis as ``zlp``).
    zlp : array_like
        (..., E) or (E,) zero-loss peaks (see :func:`extract_zlp`).
    add_zlp : bool
        Add the zero-loss peak back to the result.

    Returns
    -------
    numpy.ndarray
        (..., E) float64.
    """
    j, _ = hanning_taper(spectra)
    z = np.asarray(zlp, dtype=float)
    if z.shape[-1] != j.shape[-1]:
        raise ValueError(f"zlp has {z.shape[-1]} channels, spectra {j.shape[-1]}; they must share the energy axis")
    n = j.shape[-1]
    size = next_fast_len(2 * n - 1, real=True)
    zf = rfft(z, n=size, axis=-1)
    jf = rfft(j, n=size, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = zf * np.nan_to_num(np.log(jf / zf))
    out = irfft(sf, n=size, axis=-1)[..., :n]
    if add_zlp:
        out = out + z
    return out


def _extrapolate(y: np.ndarray, e: np.ndarray, de: float, *, window: int, size: int) -> np.ndarray:
    """Append ``size`` channels of a power law fitted to the last ``window`` channels."""
    from mltem.eels._background import fit_power_law, power_law

    ext_e = e[-1] + de * np.arange(1, size + 1)
    if e[-window] <= 0:
        return np.concatenate([y, np.zeros(y.shape[:-1] + (size,))], -1)
    a, r = fit_power_law(y, e, window_ev=(e[-window], e[-1]))
    tail = np.nan_to_num(power_law(ext_e, a, r))
    return np.concatenate([y, tail], -1)


def fourier_ratio_deconvolution(core_loss, low_loss, energy_ev, low_loss_energy_ev, *, fwhm_ev=None, threshold_ev=None, extrapolate: bool = True) -> np.ndarray:
    """Remove plural scattering from background-subtracted core-loss spectra (Fourier ratio).

    The result is reconvolved with a unit-area Gaussian of ``fwhm_ev`` (default: the
    measured zero-loss width) to keep the noise bounded, and scaled by I_0.

    Parameters
    ----------
    core_loss : array_like
        (..., E) background-subtracted core-loss spectra.
    low_loss : array_like
        (..., E_ll) or (E_ll,) low-loss spectra of the same areas, same channel width.
    energy_ev, low_loss_energy_ev : array_like
        The two energy axes, eV (uniform, same step).
    fwhm_ev : float, optional
        Width of the reconvolution Gaussian, eV.
    threshold_ev : float, optional
        End of the zero-loss peak, eV (default :func:`elastic_threshold`).
    extrapolate : bool
        Extend both spectra with power laws before tapering (as exspy does).

    Returns
    -------
    numpy.ndarray
        (..., E) single-scattering core-loss spectra.
    """
    cl = np.asarray(core_loss, dtype=float)
    ll = np.asarray(low_loss, dtype=float)
    e, de = _scale(energy_ev)
    ell, dell = _scale(low_loss_energy_ev)
    if abs(de - dell) > 1e-6 * de:
        raise ValueError(f"core-loss ({de} eV/ch) and low-loss ({dell} eV/ch) must have the same channel width")
    n_cl = cl.shape[-1]
    if fwhm_ev is None:
        fwhm_ev = float(np.nanmedian(_fwhm(ll, ell)))
    thr = elastic_threshold(ll, ell) if threshold_ev is None else threshold_ev
    i0 = np.where(ell < np.asarray(thr)[..., None], ll, 0.0).sum(-1)
    if extrapolate:
        cl = _extrapolate(cl, e, de, window=20, size=100)
        ll = _extrapolate(ll, ell, de, window=100, size=100)
    ll, _ = hanning_taper(ll)
    cl, _ = hanning_taper(cl)
    size = next_fast_len(ll.shape[-1] + cl.shape[-1] - 1, real=True)
    grid = ell[0] + de * np.arange(size)
    sigma = fwhm_ev / (2 * np.sqrt(2 * np.log(2)))
    g = np.exp(-0.5 * (grid / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)) * de
    with np.errstate(divide="ignore", invalid="ignore"):
        out = irfft(rfft(g) * rfft(cl, n=size, axis=-1) / rfft(ll, n=size, axis=-1), n=size, axis=-1)
    return out[..., :n_cl] * np.asarray(i0)[..., None] / de


def _fwhm(y: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Full width at half maximum of the highest peak (linear interpolation)."""
    y = np.asarray(y, float)
    i = np.argmax(y, -1)
    half = np.take_along_axis(y, i[..., None], -1) / 2
    idx = np.arange(y.shape[-1])
    above = y >= half
    left = np.where((idx <= i[..., None]) & ~above, idx, -1).max(-1)
    right = np.where((idx >= i[..., None]) & ~above, idx, y.shape[-1]).min(-1)
    de = e[1] - e[0]

    def cross(k0, k1):
        k0 = np.clip(k0, 0, y.shape[-1] - 1)
        k1 = np.clip(k1, 0, y.shape[-1] - 1)
        y0 = np.take_along_axis(y, k0[..., None], -1)[..., 0]
        y1 = np.take_along_axis(y, k1[..., None], -1)[..., 0]
        h = half[..., 0]
        t = np.where(y1 != y0, (h - y0) / np.where(y1 != y0, y1 - y0, 1), 0.5)
        return (k0 + t * (k1 - k0)) * de

    return cross(right - 1, right) - cross(left, left + 1)
