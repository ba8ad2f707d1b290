"""Finding the sideband of an off-axis hologram in its Fourier transform.

Positions are (ky, kx) in Fourier pixels of the unshifted FFT, signed: the sideband of
fringes ``cos(2 pi (ky y / Ny + kx x / Nx) + phase)`` sits at (ky, kx) and carries
``exp(+i phase)``; its twin at (-ky, -kx) carries ``exp(-i phase)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as _fft
from scipy import ndimage

__all__ = ["Sideband", "find_sideband", "despike"]

log = logging.getLogger(__name__)


@dataclass
class Sideband:
    """A detected sideband.

    Attributes
    ----------
    ky, kx : float
        Position in Fourier pixels of the unshifted FFT (signed, sub-pixel).
    score : float
        Peak power over the median power at the same spatial frequency (a contrast; > 20
        is a clear sideband).
    uniformity : float
        How evenly the fringes fill the field of view, 0..1 (about 0.44 for fringes
        everywhere, about 0.15 or less for a localised artefact such as a streak or an
        edge). Peaks under 60 % of the best uniformity are rejected.
    candidates : list of tuple
        The other peaks considered, as (ky, kx, score, uniformity).
    """

    ky: float
    kx: float
    score: float = float("nan")
    uniformity: float = float("nan")
    candidates: list = field(default_factory=list)

    @property
    def position(self) -> tuple[float, float]:
        """(ky, kx) in Fourier pixels."""
        return (self.ky, self.kx)

    def distance(self, shape) -> float:
        """Distance from the centre band in Fourier pixels (normalised to the smaller side)."""
        ny, nx = shape
        n = min(ny, nx)
        return float(np.hypot(self.ky * n / ny, self.kx * n / nx))


def _hann(ny: int, nx: int) -> np.ndarray:
    return (np.hanning(ny)[:, None] * np.hanning(nx)[None, :]).astype(np.float32)


def despike(image, *, threshold: float = 8.0, size: int = 3) -> tuple[np.ndarray, int]:
    """Replace isolated outlier pixels (hot/dead pixels, X-ray hits) by a local median.

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) image.
    threshold : float
        A pixel is an outlier when it differs from the median of its ``size`` x ``size``
        neighbourhood by more than ``threshold`` robust standard deviations of those
        differences.
    size : int
        Neighbourhood size in pixels.

    Returns
    -------
    cleaned : numpy.ndarray
        float32 copy with outliers replaced.
    count : int
        Number of pixels replaced.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be (y, x), got shape {img.shape}")
    med = ndimage.median_filter(img, size=size, mode="reflect")
    r = img - med
    mad = 1.4826 * float(np.median(np.abs(r)))
    if mad <= 0:
        mad = float(np.std(r)) or 1.0
    bad = np.abs(r) > threshold * mad
    out = np.where(bad, med, img)
    return out, int(bad.sum())


def _ring_median(values: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Median of ``values`` within each integer ``ring`` label (labels 0..max)."""
    v = values.ravel()
    r = ring.ravel()
    order = np.lexsort((v, r))
    rs = r[order]
    counts = np.bincount(rs, minlength=int(r.max()) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    med = np.zeros(len(counts))
    ok = counts > 0
    med[ok] = v[order][starts[ok] + counts[ok] // 2]
    return med


def _uniformity(spec_full: np.ndarray, ky: int, kx: int, half: int = 8) -> float:
    """Evenness over the field of the component in a small box around (ky, kx)."""
    ny, nx = spec_full.shape
    rows = (ky + np.arange(-half, half)) % ny
    cols = (kx + np.arange(-half, half)) % nx
    small = np.abs(_fft.ifft2(spec_full[np.ix_(rows, cols)]))
    m2 = float(np.mean(small**2))
    return float(np.mean(small) ** 2 / m2) if m2 > 0 else 0.0


def _subpixel(power: np.ndarray, ky: int, kx: int) -> tuple[float, float]:
    """Parabolic refinement of a peak of ``power`` (log scale) in y and x."""
    ny, nx = power.shape
    def frac(a, b, c):
        a, b, c = (np.log(max(v, 1e-30)) for v in (a, b, c))
        den = a - 2 * b + c
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    dy = frac(power[(ky - 1) % ny, kx % nx], power[ky % ny, kx % nx], power[(ky + 1) % ny, kx % nx])
    dx = frac(power[ky % ny, (kx - 1) % nx], power[ky % ny, kx % nx], power[ky % ny, (kx + 1) % nx])
    return ky + dy, kx + dx


def find_sideband(
    hologram,
    *,
    min_frequency: float = 0.03,
    max_frequency: float = 0.5,
    remove_outliers: bool = True,
    subpixel: bool = True,
    workers: int = -1,
) -> Sideband:
    """Locate the sideband of an off-axis hologram.

    The hologram is cleaned of outlier pixels, apodised (Hann window, which removes the
    cross-shaped streaks of the image borders) and Fourier transformed. Each Fourier
    pixel's power is divided by the median power at the same spatial frequency, so that
    the centre band (the autocorrelation, which decays smoothly from the origin) and
    white noise give about 1 and a compact peak stands out, and by the median along its
    row and column of the spectrum, which flattens the lines that detector streaks
    (bright rows or columns, readout patterns) draw. The strongest peaks are then
    checked for how evenly their fringes fill the field of view: a streak, an edge of the
    biprism shadow or a bright detector line is localised in real space and is rejected.

    Parameters
    ----------
    hologram : numpy.ndarray
        (y, x) hologram (counts or any intensity scale). A vacuum reference hologram
        gives the cleanest detection.
    min_frequency : float
        Lowest spatial frequency searched, in cycles per pixel (fringe periods up to
        1 / min_frequency pixels; default 0.03, i.e. 33 px): keeps the search out of the
        centre band.
    max_frequency : float
        Highest spatial frequency searched, cycles per pixel (default 0.5, Nyquist).
    remove_outliers : bool
        Replace hot/dead pixels by a local median before the transform (see
        :func:`despike`).
    subpixel : bool
        Refine the position to a fraction of a Fourier pixel.
    workers : int
        Threads for scipy.fft (-1: all cores).

    Returns
    -------
    Sideband
        Of the two twin sidebands, the one with kx > 0 (or ky > 0 when kx == 0); the
        other one is at (-ky, -kx) and gives the opposite sign of phase.

    Raises
    ------
    ValueError
        The input is not a finite 2-D image of at least 16 x 16 pixels, the frequency
        range is empty, or no peak was found.
    """
    img = np.asarray(hologram, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 16:
        raise ValueError(f"hologram must be a (y, x) image of at least 16 x 16 pixels, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("hologram holds NaN or infinite values")
    if not (0 < min_frequency < max_frequency):
        raise ValueError(f"need 0 < min_frequency < max_frequency, got {min_frequency}, {max_frequency}")
    ny, nx = img.shape
    if remove_outliers:
        img, nbad = despike(img)
        if nbad:
            log.info("sideband search: replaced %d outlier pixel(s)", nbad)
    win = _hann(ny, nx)
    x = (img - img.mean()) * win
    spec = _fft.fft2(x, workers=workers)
    power = spec.real**2 + spec.imag**2
    half = power[:, : nx // 2 + 1]
    smooth = ndimage.gaussian_filter(half, 1.0, mode=("wrap", "nearest"))
    fy = _fft.fftfreq(ny)[:, None]
    fx = _fft.rfftfreq(nx)[None, :]
    f = np.hypot(fy, fx)
    ring = np.rint(f * min(ny, nx)).astype(np.int64)
    allowed = (f >= min_frequency) & (f <= max_frequency) & ~((fx == 0) & (fy <= 0))
    bg = _ring_median(smooth, ring)[ring]
    # floor: in noise-free data the ring median is ~0 and any leakage would look like a peak
    floor = max(1e-6 * float(smooth[allowed].max()) if allowed.any() else 0.0, np.finfo(np.float64).tiny)
    score = smooth / np.maximum(bg, floor)
    # detector streaks (bright/dark rows or columns, readout patterns) are lines of
    # constant ky or kx in the spectrum: divide by the median along each row and column
    score /= np.maximum(np.median(score, axis=1, keepdims=True), 1.0)
    score /= np.maximum(np.median(score, axis=0, keepdims=True), 1.0)
    peaks = (score == ndimage.maximum_filter(score, size=5, mode=("wrap", "nearest"))) & allowed
    idx = np.flatnonzero(peaks)
    if idx.size == 0:
        raise ValueError("no sideband peak found between the given frequencies; is this an off-axis hologram?")
    idx = idx[np.argsort(score.ravel()[idx])[::-1][:24]]
    cands = []
    for i in idx:
        iy, ix = np.unravel_index(i, score.shape)
        ky = int(iy) if iy <= ny // 2 else int(iy) - ny
        cands.append((ky, int(ix), float(score.ravel()[i]), _uniformity(spec, ky, int(ix))))
    umax = max(c[3] for c in cands)
    valid = [c for c in cands if c[3] >= max(0.1, 0.6 * umax)]
    if not valid:
        log.warning("no sideband candidate fills the field of view evenly; taking the strongest peak")
        valid = cands[:1]
    best = max(valid, key=lambda c: c[2])
    ky, kx = float(best[0]), float(best[1])
    if subpixel:
        ky, kx = _subpixel(power, best[0], best[1])
    others = [c for c in cands if c is not best]
    if others and best is not cands[0]:
        log.info("sideband: rejected a stronger but localised peak at %s (uniformity %.2f)", cands[0][:2], cands[0][3])
    return Sideband(ky=ky, kx=kx, score=best[2], uniformity=best[3], candidates=others[:8])
