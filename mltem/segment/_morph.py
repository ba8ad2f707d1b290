"""Binary dilation by a square and bounding boxes grown by a margin, in numpy (shared by
the speck removal, the measurements and the SEI refiner, which work in windows)."""
from __future__ import annotations

import numpy as np

__all__ = ["bounding_box", "dilate_square", "grow_box"]


def _or_along(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Running OR over ``[i - r, i + r]`` along ``axis`` (nothing enters from outside):
    forward ORs over windows doubled 1, 2, 4, ... and two overlapping ones for the rest."""
    n = a.shape[axis]
    length = 2 * r + 1
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    f = np.pad(a, pad)  # f[i] = OR of a[i - r .. i - r + span - 1] after each doubling
    span = 1
    while 2 * span <= length:
        g = f.copy()
        idx = [slice(None)] * a.ndim
        src = [slice(None)] * a.ndim
        idx[axis], src[axis] = slice(0, f.shape[axis] - span), slice(span, None)
        g[tuple(idx)] |= f[tuple(src)]
        f, span = g, 2 * span
    lo = [slice(None)] * a.ndim
    hi = [slice(None)] * a.ndim
    lo[axis], hi[axis] = slice(0, n), slice(length - span, length - span + n)
    return f[tuple(lo)] | f[tuple(hi)]


def dilate_square(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """``mask`` dilated ``r`` times by the 8-connected 3 x 3 element, nothing entering from
    outside the frame: the pixels of ``ndi.binary_dilation(mask, np.ones((3, 3)),
    iterations=r)`` and of a (2r + 1)-square maximum filter, a few times faster.

    Parameters
    ----------
    mask : numpy.ndarray
        2D boolean (or 0/1) image.
    r : int
        Half-width of the square, px (0: a copy).
    """
    m = np.asarray(mask, bool)
    if int(r) != r or r < 0:
        raise ValueError(f"r must be a non-negative integer, got {r!r}")
    if r == 0:
        return m.copy()
    return _or_along(_or_along(m, int(r), 0), int(r), 1)


def bounding_box(mask: np.ndarray):
    """The smallest (y, x) pair of slices holding every True pixel of ``mask`` (None if none)."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(ys):
        return None
    return slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)


def grow_box(box, margin: int, shape):
    """``box`` (a (y, x) pair of slices) grown by ``margin`` px on every side, clipped to ``shape``."""
    return tuple(slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(box, shape))
