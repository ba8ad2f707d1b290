"""Fourier side of GPA: windows of the spectrum, masks, Bragg-spot finding.

GPA only needs the spectrum near two Bragg spots (and, to register movies, near the
origin). :class:`Spectrum` computes exactly those windows: one real FFT along x for all
rows, then complex FFTs along y for the few columns a window covers. It also removes the
image's edge discontinuity from the windows with the periodic-plus-smooth decomposition
(Moisan 2011), which costs four 1D FFTs of the image borders.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.fft as sfft

from mltem._errors import MltemError

__all__ = [
    "Spectrum",
    "MASKS",
    "mask_weights",
    "default_mask_size",
    "mask_width_px",
    "find_spots",
    "refine_spots",
    "shortest_lattice_distance",
]

log = logging.getLogger(__name__)

MASKS = ("gaussian", "cosine")


def _complex_dtype(dtype) -> np.dtype:
    return np.dtype(np.complex128) if np.dtype(dtype) == np.float64 else np.dtype(np.complex64)


def _workers(workers: int | None) -> int:
    import os

    return max(1, os.cpu_count() or 1) if workers in (None, -1, 0) else int(workers)


class Spectrum:
    """Windows of the 2D DFT of a real image, computed without the full 2D transform.

    Parameters
    ----------
    image : numpy.ndarray
        Real image, shape (y, x); float32 gives complex64 windows, float64 complex128.
    periodic : bool
        Subtract the smooth component of the periodic-plus-smooth decomposition, so the
        windows hold no streaks from the image edges.
    workers : int, optional
        Threads for scipy.fft (default: all cores).

    Notes
    -----
    ``window(kys, kxs)`` returns ``F[ky mod M, kx mod N]`` for signed integer
    frequencies, with ``F = fft2(image)`` (no normalisation).

    References
    ----------
    L. Moisan, J. Math. Imaging Vis. 39, 161 (2011), :DOI:`10.1007/s10851-010-0227-1`.
    """

    def __init__(self, image, *, periodic: bool = True, workers: int | None = None):
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"image must be 2D (y, x), got shape {image.shape}")
        self.shape = image.shape
        self.workers = _workers(workers)
        real = np.float64 if image.dtype == np.float64 else np.float32
        self.image = np.asarray(image, dtype=real)
        self.cdtype = _complex_dtype(real)
        self.fx = sfft.rfft(self.image, axis=1, workers=self.workers)  # (M, N//2+1)
        self.periodic = periodic
        if periodic:
            m, n = self.shape
            # Boundary jumps: a(x) = u[M-1, x] - u[0, x], b(y) = u[y, N-1] - u[y, 0].
            self._a_hat = sfft.fft(self.image[-1, :].astype(np.float64) - self.image[0, :])
            self._b_hat = sfft.fft(self.image[:, -1].astype(np.float64) - self.image[:, 0])

    def columns(self, kxs) -> np.ndarray:
        """``F_x[y, kx]`` (FFT along x only) for signed column frequencies ``kxs``."""
        m, n = self.shape
        k = np.mod(np.asarray(kxs, dtype=np.int64), n)
        neg = k > n // 2
        idx = np.where(neg, n - k, k)
        cols = self.fx[:, idx]
        if neg.any():
            cols[:, neg] = np.conj(cols[:, neg])
        return cols

    def window(self, kys, kxs) -> np.ndarray:
        """The spectrum on the grid ``kys x kxs`` (signed integer frequencies)."""
        m, n = self.shape
        kys = np.asarray(kys, dtype=np.int64)
        kxs = np.asarray(kxs, dtype=np.int64)
        cols = sfft.fft(self.columns(kxs), axis=0, workers=self.workers, overwrite_x=True)
        win = cols[np.mod(kys, m), :]
        if self.periodic:
            win = win - self._smooth(kys, kxs).astype(win.dtype)
        return win

    def _smooth(self, kys, kxs) -> np.ndarray:
        """DFT of the smooth component s of the periodic-plus-smooth decomposition."""
        m, n = self.shape
        ey = np.exp(2j * np.pi * kys / m)[:, None]
        ex = np.exp(2j * np.pi * kxs / n)[None, :]
        a = self._a_hat[np.mod(kxs, n)][None, :]
        b = self._b_hat[np.mod(kys, m)][:, None]
        v = a * (1 - ey) + b * (1 - ex)
        den = 2 * np.cos(2 * np.pi * kys / m)[:, None] + 2 * np.cos(2 * np.pi * kxs / n)[None, :] - 4
        out = np.zeros(np.broadcast_shapes(v.shape, den.shape), dtype=complex)
        np.divide(v, den, out=out, where=den != 0)
        return out


def mask_weights(qy, qx, g, size: float, kind: str = "gaussian") -> np.ndarray:
    """Values of a GPA mask centred on ``g`` at frequencies ``(qy, qx)``.

    Parameters
    ----------
    qy, qx : array_like
        Frequencies in 1/px (broadcastable).
    g : array_like
        Mask centre ``(g_y, g_x)`` in 1/px.
    size : float
        ``"gaussian"``: standard deviation in 1/px; ``"cosine"``: radius in 1/px at
        which the mask reaches zero (``cos^2`` profile).
    kind : {"gaussian", "cosine"}

    Returns
    -------
    numpy.ndarray
        Mask values in [0, 1].
    """
    if kind not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    if not size > 0:
        raise ValueError(f"mask size must be > 0, got {size}")
    r2 = (np.asarray(qy) - g[0]) ** 2 + (np.asarray(qx) - g[1]) ** 2
    if kind == "gaussian":
        return np.exp(-r2 / (2 * size**2))
    r = np.sqrt(r2) / size
    return np.where(r < 1, np.cos(0.5 * np.pi * np.minimum(r, 1)) ** 2, 0.0)


def mask_support(size: float, kind: str) -> float:
    """Radius (1/px) beyond which the mask is treated as zero (Gaussian: 5 sigma)."""
    return 5.0 * size if kind == "gaussian" else size


def shortest_lattice_distance(g_vectors) -> float:
    """Length of the shortest non-zero vector ``m g1 + n g2`` (same units as ``g``)."""
    g = np.asarray(g_vectors, dtype=float)
    best = np.inf
    for i in range(-3, 4):
        for j in range(-3, 4):
            if i or j:
                best = min(best, float(np.hypot(*(i * g[0] + j * g[1]))))
    return best


def default_mask_size(g_vectors, kind: str = "gaussian") -> float:
    """Default mask size (1/px or 1/nm, as ``g``) tied to the spot spacing.

    One size for both reflections, so both phases have the same spatial resolution:
    Gaussian sigma = 0.1 d, cosine radius = 0.25 d, where d is the distance from a spot
    to its nearest neighbour in the reciprocal lattice (the shortest non-zero
    ``m g1 + n g2``); the two masks then have about the same full width at half maximum
    and no neighbouring reflection leaks in (Gaussian weight exp(-50) at d).
    """
    if kind not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    d = shortest_lattice_distance(g_vectors)
    return (0.1 if kind == "gaussian" else 0.25) * d


def mask_width_px(size: float, kind: str = "gaussian") -> float:
    """Real-space width (px) of a mask: FWHM of its filter kernel.

    Strain is averaged over about this length, and the maps are unreliable within about
    two widths of the image edges. Gaussian sigma s (1/px): 2 sqrt(2 ln 2) / (2 pi s);
    cosine radius R: about 0.83 / R (FWHM of the cos^2 window's transform).
    """
    if kind == "gaussian":
        return float(2 * np.sqrt(2 * np.log(2)) / (2 * np.pi * size))
    return float(0.83 / size)


# ----------------------------------------------------------------------------------
# Spot finding
# ----------------------------------------------------------------------------------


def _welch_power(image, tile: int, max_tiles: int = 16) -> np.ndarray:
    """Averaged Hann-windowed power spectrum of up to ``max_tiles`` square tiles (shifted)."""
    m, n = image.shape
    per = max(1, int(np.sqrt(max_tiles)))
    ys = np.unique(np.linspace(0, m - tile, min(per, max(1, m // tile))).astype(int))
    xs = np.unique(np.linspace(0, n - tile, min(per, max(1, n // tile))).astype(int))
    w1 = np.hanning(tile + 2)[1:-1]
    w = np.outer(w1, w1)
    acc = np.zeros((tile, tile))
    for y0 in ys:
        for x0 in xs:
            t = np.asarray(image[y0 : y0 + tile, x0 : x0 + tile], dtype=np.float64)
            t = (t - t.mean()) * w
            acc += np.abs(sfft.fft2(t)) ** 2
    return sfft.fftshift(acc / (len(ys) * len(xs)))


def _parabola(lo: float, c: float, hi: float) -> float:
    den = lo - 2 * c + hi
    return 0.0 if den >= 0 else float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5))


def find_spots(image, *, min_angle_deg: float = 20.0, tile: int = 512, refine: bool = True) -> np.ndarray:
    """Pick two strong, non-collinear Bragg spots of a lattice image.

    The spectrum is a Welch average of Hann-windowed tiles. Each pixel's log power is
    compared with the mean log power at its spatial frequency (which follows the
    amorphous background and contrast-transfer rings); local maxima far above it are
    spots. The strongest spot is ``g1``, and the strongest one at least
    ``min_angle_deg`` away from the line of ``g1`` is ``g2``. Positions are refined to sub-pixel precision (log-parabola fit),
    then on the full image by :func:`refine_spots`.

    Parameters
    ----------
    image : numpy.ndarray
        Lattice image, shape (y, x).
    min_angle_deg : float
        Smallest angle between the lines of ``g1`` and ``g2``.
    tile : int
        Tile size (px) of the Welch spectrum (capped by the image size).
    refine : bool
        Refine on the full-resolution spectrum.

    Returns
    -------
    numpy.ndarray
        Shape (2, 2), float64: rows ``(g_y, g_x)`` in 1/px, ``g1`` first.

    Raises
    ------
    MltemError
        No two non-collinear lattice reflections stand out of the background.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2D (y, x), got shape {image.shape}")
    t = int(min(tile, *image.shape))
    if t < 16:
        raise MltemError(f"image of shape {image.shape} is too small for GPA (need at least 16 x 16 px)")
    p = _welch_power(image, t)
    logp = np.log(p + p.max() * 1e-14 + 1e-300)
    c = t // 2
    ky, kx = np.mgrid[0:t, 0:t] - c
    r = np.hypot(ky, kx)
    ri = np.rint(r).astype(int)
    from scipy import ndimage

    # background: mean log power of each ring (spots are a few pixels of a ring)
    cnt = np.bincount(ri.ravel())
    bg = np.bincount(ri.ravel(), weights=logp.ravel()) / np.maximum(cnt, 1)
    prom = logp - bg[ri]
    prom -= np.median(prom)  # ring means sit below ring medians for a skewed log-periodogram
    mad = float(np.median(np.abs(prom - np.median(prom)))) * 1.4826 + 1e-12
    peak = (prom == ndimage.maximum_filter(prom, size=5, mode="wrap")) & (r >= 3) & (r <= c - 1)
    half = (ky > 0) | ((ky == 0) & (kx > 0))
    if not (peak & half).any():
        raise MltemError("no lattice reflection stands out of the background; pass the spots explicitly")
    strong = logp > logp[peak & half].max() - np.log(1e6)  # at least 1e-3 of the strongest amplitude
    cand = np.argwhere(peak & half & strong & (prom > max(6 * mad, np.log(20.0))))
    if len(cand) == 0:
        raise MltemError("no lattice reflection stands out of the background; pass the spots explicitly")
    # significance decides what is a spot; strength (power) decides which spots: a strong
    # spot gives a less noisy phase
    scores = logp[cand[:, 0], cand[:, 1]]
    order = np.argsort(-scores)
    cand = cand[order]
    gs = []
    for yy, xx in cand:
        dy = _parabola(logp[yy - 1, xx], logp[yy, xx], logp[(yy + 1) % t, xx])
        dx = _parabola(logp[yy, xx - 1], logp[yy, xx], logp[yy, (xx + 1) % t])
        gs.append(np.array([(yy - c + dy) / t, (xx - c + dx) / t]))
    g1 = gs[0]
    sin_min = np.sin(np.deg2rad(min_angle_deg))
    g2 = None
    for g in gs[1:]:
        s = abs(g1[0] * g[1] - g1[1] * g[0]) / (np.hypot(*g1) * np.hypot(*g))
        if s >= sin_min:
            g2 = g
            break
    if g2 is None:
        raise MltemError(
            "found lattice fringes in one direction only (one set of collinear spots); "
            "GPA needs two non-parallel reflections: pass them explicitly"
        )
    g = np.stack([g1, g2])
    if refine:
        g = refine_spots(image, g)
    log.debug("found spots %s (1/px)", g.tolist())
    return g


def refine_spots(image, g_vectors, *, radius_px: int = 2) -> np.ndarray:
    """Refine Bragg-spot positions on the full-resolution spectrum.

    The image is Hann-windowed; the peak of the log power near each ``g`` is fitted with
    a parabola along each axis.

    Parameters
    ----------
    image : numpy.ndarray
        Shape (y, x).
    g_vectors : array_like
        Shape (2, 2): approximate rows ``(g_y, g_x)`` in 1/px.
    radius_px : int
        Half-size (frequency pixels) of the window searched around each ``g``.

    Returns
    -------
    numpy.ndarray
        Shape (2, 2), rows ``(g_y, g_x)`` in 1/px.
    """
    image = np.asarray(image, dtype=np.float64 if np.asarray(image).dtype == np.float64 else np.float32)
    g = np.asarray(g_vectors, dtype=float)
    m, n = image.shape
    wy = np.hanning(m + 2)[1:-1].astype(image.dtype)
    wx = np.hanning(n + 2)[1:-1].astype(image.dtype)
    spec = Spectrum((image - image.mean()) * wy[:, None] * wx[None, :], periodic=False)
    out = g.copy()
    r = int(radius_px) + 1
    for i, gi in enumerate(g):
        ky0, kx0 = int(round(gi[0] * m)), int(round(gi[1] * n))
        kys = np.arange(ky0 - r, ky0 + r + 1)
        kxs = np.arange(kx0 - r, kx0 + r + 1)
        lp = np.log(np.abs(spec.window(kys, kxs)) ** 2 + 1e-300)
        inner = lp[1:-1, 1:-1]
        iy, ix = np.unravel_index(np.argmax(inner), inner.shape)
        iy, ix = iy + 1, ix + 1
        dy = _parabola(lp[iy - 1, ix], lp[iy, ix], lp[iy + 1, ix])
        dx = _parabola(lp[iy, ix - 1], lp[iy, ix], lp[iy, ix + 1])
        out[i] = [(kys[iy] + dy) / m, (kxs[ix] + dx) / n]
    return out
