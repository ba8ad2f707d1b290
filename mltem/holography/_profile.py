"""Line profiles averaged across a rectangle."""
from __future__ import annotations

import numpy as np

__all__ = ["line_profile"]


def line_profile(image, start, end, *, width: float = 1.0, pixel_size_nm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Profile of a map along a line, averaged across a rectangle of the given width.

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) map (phase in rad, potential in V, charge in e/nm^2, ...).
    start, end : tuple of float
        (y, x) of the two ends of the centre line, pixels.
    width : float
        Width of the rectangle across the line, pixels (>= 1); values are averaged
        across it (bilinear sampling).
    pixel_size_nm : float
        Pixel size in nm, for the distance axis.

    Returns
    -------
    distance_nm : numpy.ndarray
        Distance from ``start`` along the line, nm.
    values : numpy.ndarray
        Averaged values (NaN where the rectangle holds NaN).
    """
    from skimage.measure import profile_line

    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be (y, x), got shape {img.shape}")
    p0 = np.asarray(start, dtype=float)
    p1 = np.asarray(end, dtype=float)
    if p0.shape != (2,) or p1.shape != (2,):
        raise ValueError(f"start and end must be (y, x) pairs, got {start!r}, {end!r}")
    ny, nx = img.shape
    for p in (p0, p1):
        if not (0 <= p[0] <= ny - 1 and 0 <= p[1] <= nx - 1):
            raise ValueError(f"profile end {tuple(p)} lies outside the {ny} x {nx} image")
    length = float(np.hypot(*(p1 - p0)))
    if length < 1:
        raise ValueError("profile line is shorter than one pixel")
    if not width >= 1:
        raise ValueError(f"profile width must be >= 1 pixel, got {width}")
    vals = profile_line(img, p0, p1, linewidth=max(1, int(round(width))), order=1, mode="nearest",
                        reduce_func=np.mean)
    dist = np.linspace(0.0, length, len(vals)) * pixel_size_nm
    return dist, np.asarray(vals, dtype=np.float64)
