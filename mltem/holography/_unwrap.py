"""Phase unwrapping and the removal of phase offsets and ramps."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["unwrap_phase", "remove_phase_ramp"]

_TWO_PI = 2 * np.pi


def _coarse(z: np.ndarray, b: int) -> np.ndarray:
    ny, nx = z.shape
    py, px = (-ny) % b, (-nx) % b
    if py or px:
        z = np.pad(z, ((0, py), (0, px)), mode="edge")
    return z.reshape(z.shape[0] // b, b, z.shape[1] // b, b).mean(axis=(1, 3))


def unwrap_phase(wrapped, *, method: str = "exact", coarsen: int | None = None) -> np.ndarray:
    """Unwrap a 2-D phase map with the reliability-sorting unwrapper.

    ``method="exact"`` runs :func:`skimage.restoration.unwrap_phase` (Herraez et al.
    2002, :DOI:`10.1364/AO.41.007437`) at full resolution. ``method="fast"`` is a
    coarse-grid variant, 3-5x faster on 512 x 512 maps and more robust to noise, that
    can place the 2 pi cut around a phase singularity differently (a few pixels):

    The complex phasor (or the complex wave itself, whose amplitude then weights each
    pixel) is averaged in ``coarsen`` x ``coarsen`` blocks, the coarse phase is unwrapped
    with :func:`skimage.restoration.unwrap_phase` (Herraez et al. 2002), interpolated
    back, and each full-resolution pixel gets the multiple of 2 pi that brings it
    closest to it. The result is exactly ``wrapped + 2 pi k`` (integer k per pixel).
    Averaging the phasor before unwrapping removes the noise-born phase singularities
    that misguide unwrappers at full resolution, and the coarse grid makes it several
    times faster.

    Parameters
    ----------
    wrapped : numpy.ndarray
        (y, x) wrapped phase in rad, or a complex wave (its angle is unwrapped).
    method : {"exact", "fast"}
        Full-resolution or coarse-grid unwrapping (see above).
    coarsen : int, optional
        Block size of the fast method. Default: adaptive, starting from 4 and halved until the coarse phase
        changes by less than pi/2 between neighbours in 95 % of places. A band-limited
        wave (sideband aperture of radius r Fourier pixels in an N-pixel image) is
        sampled well enough with ``coarsen <= N / (2 r)``; 1 unwraps at full resolution.

    Returns
    -------
    numpy.ndarray
        Unwrapped phase in rad, float32 for float32/complex64 input, else float64.
    """
    from skimage.restoration import unwrap_phase as _sk_unwrap

    a = np.asarray(wrapped)
    if a.ndim != 2:
        raise ValueError(f"unwrap_phase needs a (y, x) map, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("phase holds NaN or infinite values; unwrap_phase needs finite values")
    if method not in ("exact", "fast"):
        raise ValueError(f"method must be 'exact' or 'fast', got {method!r}")
    out_dtype = np.float32 if a.dtype in (np.float32, np.complex64) else np.float64
    if np.iscomplexobj(a):
        phase = np.angle(a).astype(out_dtype)
        z = a
    else:
        phase = a.astype(out_dtype)
        z = None
    if method == "exact":
        return _sk_unwrap(phase.astype(np.float64)).astype(out_dtype)
    auto = coarsen is None
    b = 4 if auto else int(coarsen)
    if b < 1:
        raise ValueError(f"coarsen must be >= 1, got {coarsen}")
    b = min(b, max(1, min(a.shape) // 16))
    if z is None and b > 1:
        z = np.exp(1j * phase).astype(np.complex64 if out_dtype == np.float32 else np.complex128)
    while b > 1:
        zc = _coarse(z, b)
        pc = np.angle(zc)
        if not auto:
            break
        dy = np.abs(np.angle(np.exp(1j * np.diff(pc, axis=0))))
        dx = np.abs(np.angle(np.exp(1j * np.diff(pc, axis=1))))
        if max(np.quantile(dy, 0.95), np.quantile(dx, 0.95)) < np.pi / 2:
            break
        b //= 2
    if b <= 1:
        return _sk_unwrap(phase.astype(np.float64)).astype(out_dtype)
    pu = _sk_unwrap(pc)
    ny, nx = phase.shape
    up = ndimage.zoom(pu, b, order=1, grid_mode=True, mode="nearest")[:ny, :nx]
    k = np.rint((up - phase) / _TWO_PI)
    return (phase + _TWO_PI * k).astype(out_dtype)


def _region_mask(shape, region) -> np.ndarray:
    if region is None:
        return np.ones(shape, dtype=bool)
    r = np.asarray(region)
    if r.dtype == bool:
        if r.shape != tuple(shape):
            raise ValueError(f"region mask shape {r.shape} differs from the map's {tuple(shape)}")
        m = r
    else:
        if r.shape != (4,):
            raise ValueError(f"region must be a bool mask or (y0, y1, x0, x1) in pixels, got {region!r}")
        y0, y1, x0, x1 = (int(v) for v in r)
        ny, nx = shape
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise ValueError(f"region (y0, y1, x0, x1) = {tuple(r)} is empty or outside the {ny} x {nx} map")
        m = np.zeros(shape, dtype=bool)
        m[y0:y1, x0:x1] = True
    if m.sum() < 3:
        raise ValueError("region holds fewer than 3 pixels")
    return m


def remove_phase_ramp(phase, *, region=None, order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Subtract a constant (order 0) or a plane (order 1) fitted in a region.

    Parameters
    ----------
    phase : numpy.ndarray
        (y, x) unwrapped phase in rad.
    region : tuple or numpy.ndarray, optional
        Vacuum/reference region: (y0, y1, x0, x1) in pixels (half-open) or a bool mask;
        default the whole map.
    order : {0, 1}
        0: offset only (median of the region); 1: least-squares plane.

    Returns
    -------
    corrected : numpy.ndarray
        Phase minus the fit, same dtype.
    coefficients : numpy.ndarray
        (offset,) or (offset at pixel (0, 0), d/dy, d/dx) in rad and rad/pixel.
    """
    p = np.asarray(phase)
    if p.ndim != 2:
        raise ValueError(f"phase must be (y, x), got shape {p.shape}")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (offset) or 1 (plane), got {order}")
    m = _region_mask(p.shape, region)
    if order == 0:
        c = float(np.median(p[m]))
        return (p - c).astype(p.dtype), np.array([c])
    yy, xx = np.nonzero(m)
    design = np.stack([np.ones(yy.size), yy, xx], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, p[m].astype(np.float64), rcond=None)
    ny, nx = p.shape
    fit = coef[0] + coef[1] * np.arange(ny)[:, None] + coef[2] * np.arange(nx)[None, :]
    return (p - fit).astype(p.dtype), coef
