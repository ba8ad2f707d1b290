"""Drift registration of lattice movies.

A lattice repeats itself, so cross-correlating raw frames finds the shift only modulo a
unit cell. Frames are therefore registered on their low spatial frequencies (below 0.4 of
the shortest reciprocal-lattice distance, so no Bragg spot takes part): particle edges,
thickness and amorphous contrast carry the drift. The correlation is a normalised
(phase) correlation on that low-frequency window, found on a coarse grid and refined to
1/50 px with local DFTs (Guizar-Sicairos et al. 2008).
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from mltem.gpa._spectrum import Spectrum, shortest_lattice_distance

__all__ = ["LowPassWindow", "register_drift"]


class LowPassWindow:
    """The low-frequency spectrum of a reference frame, to register other frames to it.

    Parameters
    ----------
    image : numpy.ndarray
        Reference frame (y, x).
    g_vectors : array_like
        Shape (2, 2): reciprocal lattice vectors, rows ``(g_y, g_x)`` in 1/px; frequencies
        up to 0.4 of the shortest lattice distance are used.
    workers : int, optional
        Threads for scipy.fft.
    """

    def __init__(self, image, g_vectors, *, workers: int | None = None):
        image = np.asarray(image)
        self.shape = image.shape
        self.workers = workers
        m, n = self.shape
        kc = 0.4 * shortest_lattice_distance(g_vectors)  # 1/px
        ky = max(2, int(kc * m))
        kx = max(2, int(kc * n))
        self.kys = np.arange(-ky, ky + 1)
        self.kxs = np.arange(-kx, kx + 1)
        qy = self.kys[:, None] / m
        qx = self.kxs[None, :] / n
        self.weight = np.exp(-(qy**2 + qx**2) / (2 * (kc / 2) ** 2))
        self.weight[ky, kx] = 0.0  # no DC
        self._hann = None
        self.ref = self._window(image)

    def _window(self, image) -> np.ndarray:
        # A Hann window keeps the lattice's edge leakage (fixed in the frame, not moving
        # with the specimen) out of the low frequencies.
        image = np.asarray(image, dtype=np.float64)
        if self._hann is None:
            m, n = image.shape
            self._hann = (np.hanning(m + 2)[1:-1][:, None], np.hanning(n + 2)[1:-1][None, :])
        wy, wx = self._hann
        img = (image - image.mean()) * wy * wx
        w = Spectrum(img, periodic=False, workers=self.workers).window(self.kys, self.kxs)
        return w.astype(np.complex128)

    def drift(self, image, *, precision_px: float = 0.02) -> np.ndarray:
        """Shift ``(dy, dx)`` in px such that ``image(r) ~ reference(r - shift)``."""
        m, n = self.shape
        if np.shape(image) != self.shape:
            raise ValueError(f"frame shape {np.shape(image)} differs from the reference's {self.shape}")
        cross = self._window(image) * np.conj(self.ref)
        cross /= np.abs(cross) + 1e-30
        cross *= self.weight
        # coarse: correlation on a grid of my x mx points over the whole field of view
        my = sfft.next_fast_len(max(4 * len(self.kys), 32))
        mx = sfft.next_fast_len(max(4 * len(self.kxs), 32))
        grid = np.zeros((my, mx), dtype=complex)
        grid[np.ix_(np.mod(self.kys, my), np.mod(self.kxs, mx))] = cross
        c = np.real(sfft.ifft2(grid))
        iy, ix = np.unravel_index(np.argmax(c), c.shape)
        ty = (iy if iy < my // 2 else iy - my) * m / my
        tx = (ix if ix < mx // 2 else ix - mx) * n / mx
        # refine with local DFTs: two rounds, each 31 x 31 points
        span_y, span_x = 1.5 * m / my, 1.5 * n / mx
        while True:
            dys = ty + np.linspace(-span_y, span_y, 31)
            dxs = tx + np.linspace(-span_x, span_x, 31)
            ey = np.exp(2j * np.pi * np.outer(dys, self.kys) / m)
            ex = np.exp(2j * np.pi * np.outer(self.kxs, dxs) / n)
            c = np.real(ey @ cross @ ex)
            iy, ix = np.unravel_index(np.argmax(c), c.shape)
            ty, tx = dys[iy], dxs[ix]
            if max(span_y, span_x) / 15 <= precision_px:
                break
            span_y, span_x = span_y / 10, span_x / 10
        return np.array([ty, tx])


def register_drift(frames, g_vectors, *, reference: int = 0, workers: int | None = None) -> np.ndarray:
    """Drift of every frame of a lattice movie relative to one frame.

    Parameters
    ----------
    frames : array_like
        Stack (frame, y, x) (numpy, dask or anything indexable by frame).
    g_vectors : array_like
        Shape (2, 2): reciprocal lattice vectors in 1/px, rows ``(g_y, g_x)``.
    reference : int
        Index of the reference frame.

    Returns
    -------
    numpy.ndarray
        Shape (frame, 2): ``(dy, dx)`` in px, with ``frame_k(r) ~ frame_ref(r - d_k)``.
    """
    n = len(frames)
    if not 0 <= reference < n:
        raise ValueError(f"reference frame {reference} is out of range for {n} frames")
    win = LowPassWindow(np.asarray(frames[reference]), g_vectors, workers=workers)
    out = np.zeros((n, 2))
    for k in range(n):
        if k != reference:
            out[k] = win.drift(np.asarray(frames[k]))
    if not np.isfinite(out).all():  # pragma: no cover - defensive
        raise ValueError("registration failed (non-finite drift)")
    return out
