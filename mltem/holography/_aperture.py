"""Sideband apertures and the choice of their radius from the noise of the data."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import fft as _fft

from mltem.holography._sideband import _hann

__all__ = ["APERTURES", "aperture_mask", "ApertureEstimate", "estimate_aperture_radius"]

log = logging.getLogger(__name__)

APERTURES = ("hard", "soft", "butterworth")


def _check_aperture(kind: str, radius: float, smoothness: float | None, order: int) -> float:
    if kind not in APERTURES:
        raise ValueError(f"aperture must be one of {APERTURES}, got {kind!r}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"aperture radius must be > 0 Fourier pixels, got {radius}")
    if smoothness is None:
        smoothness = max(1.0, 0.1 * radius)
    if smoothness <= 0:
        raise ValueError(f"smoothness must be > 0 Fourier pixels, got {smoothness}")
    if kind == "butterworth" and int(order) < 1:
        raise ValueError(f"Butterworth order must be >= 1, got {order}")
    return float(smoothness)


def _profile(d: np.ndarray, kind: str, radius: float, smoothness: float, order: int) -> np.ndarray:
    if kind == "hard":
        return (d <= radius).astype(np.float32)
    if kind == "soft":
        return (0.5 * (1.0 - np.tanh((d - radius) / (0.5 * smoothness)))).astype(np.float32)
    return (1.0 / (1.0 + (d / radius) ** (2 * int(order)))).astype(np.float32)


def _support(kind: str, radius: float, smoothness: float, order: int) -> float:
    """Distance beyond which the aperture is below 1e-6."""
    if kind == "hard":
        return radius + 1
    if kind == "soft":
        return radius + 0.25 * smoothness * np.log(2e6) + 1  # tanh tail
    return radius * (1e6) ** (1 / (2 * int(order))) + 1


def aperture_mask(shape, center, radius: float, *, kind: str = "soft", smoothness: float | None = None,
                  order: int = 8) -> np.ndarray:
    """A circular aperture in the unshifted FFT layout.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx) of the Fourier transform.
    center : tuple of float
        (ky, kx) in Fourier pixels, signed (e.g. a :class:`Sideband` position).
    radius : float
        Radius in Fourier pixels (normalised to the smaller side for non-square images):
        the edge for ``hard``, the 50 % point for ``soft`` and ``butterworth``.
    kind : {"hard", "soft", "butterworth"}
        ``hard``: 1 inside, 0 outside; ``soft``: ``0.5 (1 - tanh((d - r) / (s / 2)))``
        with edge width ``smoothness`` (holospy's aperture); ``butterworth``:
        ``1 / (1 + (d / r)^(2 order))``.
    smoothness : float, optional
        Edge width of the soft aperture in Fourier pixels (default 10 % of the radius,
        at least 1).
    order : int
        Order of the Butterworth aperture.

    Returns
    -------
    numpy.ndarray
        float32 (Ny, Nx) transmission, 0..1.
    """
    ny, nx = (int(s) for s in shape)
    smoothness = _check_aperture(kind, radius, smoothness, order)
    d = _distance(ny, nx, center)
    return _profile(d, kind, radius, smoothness, order)


def _distance(ny: int, nx: int, center) -> np.ndarray:
    n = min(ny, nx)
    ky, kx = (float(c) for c in center)
    dy = (np.arange(ny) - ky + ny / 2) % ny - ny / 2
    dx = (np.arange(nx) - kx + nx / 2) % nx - nx / 2
    return np.hypot((dy * n / ny)[:, None], (dx * n / nx)[None, :])


@dataclass
class ApertureEstimate:
    """The aperture radius chosen from the data.

    Attributes
    ----------
    radius : float
        Chosen radius in Fourier pixels.
    max_radius : float
        Largest radius allowed (half the sideband distance).
    noise_power : float
        Noise power per Fourier pixel at the sideband's spatial frequency (object plus
        reference, in the object's scale).
    limited_by : str
        ``"noise"`` (signal fell below the noise), ``"centre band"`` (no noise limit
        before the maximum radius) or ``"minimum"``.
    """

    radius: float
    max_radius: float
    noise_power: float
    limited_by: str


def _annulus_noise(power: np.ndarray, center, k0: float) -> float:
    """Mean noise power at |k| ~ |k0|, away from the two sidebands (median / ln 2)."""
    ny, nx = power.shape
    d0 = _distance(ny, nx, (0.0, 0.0))
    dp = _distance(ny, nx, center)
    dm = _distance(ny, nx, (-center[0], -center[1]))
    w = max(3.0, 0.1 * k0)
    sel = (np.abs(d0 - k0) <= w) & (dp > 0.5 * k0) & (dm > 0.5 * k0)
    if sel.sum() < 16:
        sel = (dp > 0.5 * k0) & (dm > 0.5 * k0) & (d0 > 0.5 * k0)
    # |F|^2 of complex Gaussian noise is exponential: mean = median / ln 2
    return float(np.median(power[sel]) / np.log(2))


def estimate_aperture_radius(hologram, sideband, *, reference=None, min_radius: float = 3.0,
                             max_radius: float | None = None, workers: int = -1) -> ApertureEstimate:
    """Choose the sideband aperture radius from the measured noise of the data.

    Including a ring of Fourier pixels at distance q from the sideband centre adds the
    object's signal power S(q) there and the noise power N of the ring. The squared
    error of the reconstructed wave is smallest when exactly the rings with S(q) > N are
    kept, so the radius is the distance at which the object's azimuthally averaged
    sideband power falls to the noise level. The noise is measured at the sideband's own
    spatial frequency (so a detector MTF is accounted for), as the median power on a
    ring around the centre band away from the sidebands; the reference hologram's noise
    is added in proportion, since the wave is divided by the reference wave.

    Parameters
    ----------
    hologram : numpy.ndarray
        (y, x) object hologram.
    sideband : Sideband or tuple of float
        (ky, kx) in Fourier pixels.
    reference : numpy.ndarray, optional
        (y, x) vacuum reference hologram.
    min_radius : float
        Smallest radius returned, Fourier pixels.
    max_radius : float, optional
        Largest radius returned (default half the sideband distance, beyond which the
        aperture takes in the centre band).
    workers : int
        Threads for scipy.fft.

    Returns
    -------
    ApertureEstimate
    """
    img = np.asarray(hologram, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"hologram must be (y, x), got shape {img.shape}")
    center = tuple(float(c) for c in getattr(sideband, "position", sideband))
    ny, nx = img.shape
    n = min(ny, nx)
    k0 = float(np.hypot(center[0] * n / ny, center[1] * n / nx))
    if k0 < 4:
        raise ValueError(f"sideband at {center} is too close to the centre band (|k| = {k0:.1f} px)")
    rmax = 0.5 * k0 if max_radius is None else float(max_radius)
    win = _hann(ny, nx)

    def spectrum(a):
        f = _fft.fft2((a - a.mean()) * win, workers=workers)
        return f.real**2 + f.imag**2

    p_obj = spectrum(img)
    d = _distance(ny, nx, center)
    noise_obj = _annulus_noise(p_obj, center, k0)
    noise = noise_obj
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float32)
        if ref.shape != img.shape:
            raise ValueError(f"reference shape {ref.shape} differs from the hologram's {img.shape}")
        p_ref = spectrum(ref)
        core = d <= 3
        c_obj = float(p_obj[core].sum())
        c_ref = float(p_ref[core].sum())
        n_ref = _annulus_noise(p_ref, center, k0)
        if c_ref > 0:
            noise += n_ref * c_obj / c_ref
    q = np.rint(d).astype(np.int64)
    sel = q <= int(np.ceil(rmax)) + 3
    sums = np.bincount(q[sel], weights=p_obj[sel])
    counts = np.bincount(q[sel])
    prof = sums / np.maximum(counts, 1) - noise_obj  # object signal power per ring
    # 3-ring running mean to steady the ring estimate
    prof_s = np.convolve(prof, np.ones(3) / 3, mode="same")
    below = np.flatnonzero((prof_s < noise) & (np.arange(len(prof_s)) >= 2))
    if below.size and below[0] < rmax:
        r, why = float(below[0]), "noise"
    else:
        r, why = rmax, "centre band"
    if r < min_radius:
        r, why = float(min_radius), "minimum"
    r = min(r, rmax)
    log.info("aperture radius %.1f px (limited by %s; max %.1f px)", r, why, rmax)
    return ApertureEstimate(radius=r, max_radius=rmax, noise_power=noise, limited_by=why)
