"""Fronts in lattice-resolved movies: the step of GPA's dilatation where the reacted lattice
is expanded (or contracted), measured at the half-way point of the smoothed step.

GPA smooths the strain with its Bragg mask: a sharp lattice-parameter step becomes an
erf-like ramp about ``width_px`` (FWHM) wide, symmetric about the true interface. The
front is therefore the half-way point of the step, measured by the area of the
normalised profile over a window that covers the whole ramp (+-3 sigma); a narrow window
or levels read inside the ramp shift it by up to a mask width.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LatticeFronts", "lattice_fronts", "lattice_drift", "LATTICE_MASK_FRACTION"]

log = logging.getLogger(__name__)

#: GPA Gaussian mask sigma as a fraction of the shortest reciprocal-lattice distance. GPA's
#: default (0.1) smooths over ~2 lattice-distance^-1; the front is averaged along its whole
#: length, so a finer mask (less smoothing, more noise) is the better trade.
LATTICE_MASK_FRACTION = 0.2


@dataclass
class LatticeFronts:
    """Result of :func:`lattice_fronts`.

    Attributes
    ----------
    measured_px : numpy.ndarray
        (frame,) front position, px from the origin along ``direction``; NaN where the
        front lies outside the reliable part of the field (GPA margin plus the ramp).
    kymograph : numpy.ndarray
        (frame, M) dilatation change since frame 0, column ``j`` at ``j`` px (NaN where
        no reliable pixel projects).
    origin_xy, direction_xy : numpy.ndarray
        (2,) origin and unit direction of motion ``(x, y)`` in frame-0 px.
    drift_px : numpy.ndarray
        (frame, 2) drift ``(dy, dx)`` from the unreacted lattice's geometric phases.
    width_px, margin_px : float
        GPA smoothing width (FWHM) and unreliable edge margin, px.
    g_vectors : numpy.ndarray
        (2, 2) reference reflections, rows ``(g_y, g_x)`` in 1/px.
    level : float
        Dilatation step across the front (reacted minus unreacted).
    """

    measured_px: np.ndarray
    kymograph: np.ndarray
    origin_xy: np.ndarray
    direction_xy: np.ndarray
    drift_px: np.ndarray
    width_px: float
    margin_px: float
    g_vectors: np.ndarray
    level: float


def lattice_drift(phases, g_vectors, regions) -> np.ndarray:
    """Rigid drift of every frame from the geometric phases of a lattice that does not change.

    A content shift ``d`` changes the phase of reflection ``g`` by ``-2 pi g . d``.
    Frame-to-frame phase changes (circular means over ``regions``) are chained, so drifts
    of many lattice periods are followed as long as each step is below half a period.

    Parameters
    ----------
    phases : numpy.ndarray
        (frame, 2, y, x) geometric phases (rad) relative to ``g_vectors``.
    g_vectors : array_like
        (2, 2) rows ``(g_y, g_x)`` in 1/px.
    regions : numpy.ndarray
        (frame, y, x) bool: where the lattice is unchanged (e.g. ahead of the front); a
        frame with fewer than 16 such pixels keeps the previous drift.

    Returns
    -------
    numpy.ndarray
        (frame, 2) drift ``(dy, dx)`` in px, frame 0 = 0.
    """
    ph = np.asarray(phases)
    G = np.asarray(g_vectors, float)
    if ph.ndim != 4 or ph.shape[1] != 2 or G.shape != (2, 2):
        raise ValueError(f"phases must be (frame, 2, y, x) and g_vectors (2, 2), got {ph.shape} and {G.shape}")
    T = len(ph)
    d = np.zeros((T, 2))
    Ginv = np.linalg.inv(G)
    for t in range(1, T):
        reg = regions[t] & regions[t - 1]
        if reg.sum() < 16:
            d[t] = d[t - 1]
            continue
        step = np.angle(np.exp(1j * (ph[t][:, reg] - ph[t - 1][:, reg])).mean(axis=1))
        d[t] = d[t - 1] + Ginv @ (-step / (2 * np.pi))
    return d


def _project(dil, mask, origin, e, drift, n_bins):
    """(frame, n_bins) mean of ``dil`` over pixels whose specimen position projects to each bin."""
    T, H, W = dil.shape
    yy, xx = np.nonzero(mask)
    K = np.full((T, n_bins), np.nan)
    counts = np.zeros((T, n_bins))
    for t in range(T):
        dy, dx = drift[t]
        u = (xx - dx - origin[0]) * e[0] + (yy - dy - origin[1]) * e[1]
        b = np.floor(u + 0.5).astype(int)
        ok = (b >= 0) & (b < n_bins) & np.isfinite(dil[t, yy, xx])
        c = np.bincount(b[ok], minlength=n_bins)
        s = np.bincount(b[ok], weights=dil[t, yy[ok], xx[ok]], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            K[t] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        counts[t] = c
    return K, counts


def _direction(dil, interior, *, n_frames: int = 8):
    """Unit direction of motion (x, y) of a straight front from the change since frame 0.

    The change maps are projected on every direction (1 degree steps, then a parabola):
    the front's normal is the direction whose 1D profile explains most of their variance
    (a Radon-like search, robust to GPA's noise and edge artefacts). The side that
    changed more is where the front came from.
    """
    T = len(dil)
    yy, xx = np.nonzero(interior)
    idx = np.unique(np.linspace(1, T - 1, min(n_frames, T - 1)).round().astype(int))
    raw = np.stack([np.nan_to_num(dil[t] - dil[0])[yy, xx] for t in idx])
    ch = raw - raw.mean(axis=1, keepdims=True)
    xc, yc = xx - xx.mean(), yy - yy.mean()

    def explained(theta):
        u = xc * math.cos(theta) + yc * math.sin(theta)
        b = np.floor(u - u.min()).astype(int)
        c = np.bincount(b).astype(float)
        tot = 0.0
        for row in ch:
            sb = np.bincount(b, weights=row, minlength=len(c))
            tot += float(np.sum(sb[c > 0] ** 2 / c[c > 0]))
        return tot

    thetas = np.radians(np.arange(0.0, 180.0, 1.0))
    ev = np.array([explained(th) for th in thetas])
    i = int(np.argmax(ev))
    a, b0, c = ev[i - 1], ev[i], ev[(i + 1) % len(ev)]
    den = a - 2 * b0 + c
    theta = thetas[i] + (math.radians(1.0) * 0.5 * (a - c) / den if den < 0 else 0.0)
    e = np.array([math.cos(theta), math.sin(theta)])
    u = xc * e[0] + yc * e[1]
    # the reacted side is the half that changed more since frame 0
    lo = u < np.median(u)
    side_lo = np.abs(raw[:, lo].mean(axis=1)).sum()
    side_hi = np.abs(raw[:, ~lo].mean(axis=1)).sum()
    return e if side_lo >= side_hi else -e


def _frame_origin(shape, e):
    """Point where a front moving along ``e`` enters the frame, on the line through the centre."""
    H, W = shape
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float)
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    proj = (corners - c) @ e
    return c + proj.min() * e, float(proj.max() - proj.min())


def lattice_fronts(frames, *, origin=None, direction=None, half_width_px: float | None = None,
                   mask_fraction: float = LATTICE_MASK_FRACTION) -> LatticeFronts:
    """Front position in every frame of a lattice-resolved movie from GPA's dilatation.

    Steps: GPA plan on frame 0 (reflections found there, reference = its majority
    lattice, i.e. frame 0 must be mostly unreacted); dilatation ``exx + eyy`` and
    geometric phases of every frame; direction of motion from the change since frame 0;
    a coarse front; the drift from the phases of the unreacted lattice ahead of it; then
    the dilatation change projected on the direction in specimen coordinates, and the
    half-way point of its step over a window covering GPA's smoothing ramp.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) float32 lattice images.
    origin, direction : array_like, optional
        ``(x, y)`` origin (px) and direction of motion; default: detected (the front
        enters at the frame's border on the line through the centre).
    half_width_px : float, optional
        With ``origin``: use only pixels within this distance of the line.
    mask_fraction : float
        GPA mask sigma as a fraction of the shortest reciprocal-lattice distance.

    Returns
    -------
    LatticeFronts
    """
    from mltem.gpa import find_spots, make_plan, shortest_lattice_distance

    T, H, W = frames.shape
    if not 0 < mask_fraction <= 0.35:
        raise ValueError(f"mask_fraction must be in (0, 0.35], got {mask_fraction}")
    try:
        g = find_spots(frames[0])
    except ValueError as exc:
        raise ValueError(f"no lattice found in frame 0 for the lattice mode ({exc})") from exc
    plan = make_plan(frames[0], g_vectors=g, mask_size=mask_fraction * shortest_lattice_distance(g),
                     reference="auto", register=False)
    width = float(plan.width_px)
    margin = int(math.ceil(2 * width))
    if min(H, W) - 2 * margin < 16:
        raise ValueError(f"frames of {H} x {W} px leave no reliable interior beyond GPA's {margin} px margins")
    dil = np.empty((T, H, W), np.float32)
    phases = np.empty((T, 2, H, W), np.float32)
    for t in range(T):
        s, ph, _amp = plan.strain(frames[t], return_phases=True)
        dil[t] = s[0] + s[1]
        phases[t] = ph
    interior = np.zeros((H, W), bool)
    interior[margin : H - margin, margin : W - margin] = True
    if direction is None:
        e = _direction(dil, interior)
    else:
        e = np.asarray(direction, float)
        e = e / max(float(np.hypot(*e)), 1e-12)
    if origin is None:
        p0, span = _frame_origin((H, W), e)
        mask = interior
    else:
        p0 = np.asarray(origin, float)
        corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float)
        span = float(((corners - p0) @ e).max())
        mask = interior
        if half_width_px is not None:
            yy, xx = np.mgrid[0:H, 0:W]
            v = -(xx - p0[0]) * e[1] + (yy - p0[1]) * e[0]
            mask = interior & (np.abs(v) <= half_width_px)
    n_bins = int(math.ceil(span)) + 1
    sigma = width / (2 * math.sqrt(2 * math.log(2)))
    window = int(math.ceil(3 * sigma)) + 2
    zero = np.zeros((T, 2))

    def measure(drift):
        K, counts = _project(dil, mask, p0, e, drift, n_bins)
        K = K - K[:1]
        full = counts.min(axis=0) >= 0.25 * counts.max()
        cols = np.nonzero(full)[0]
        if len(cols) < 2 * window + 4:
            raise ValueError("too little reliable field along the front's direction for the lattice mode")
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        pos, level = _half_way(K[:, c0:c1], window)
        pos = pos + c0
        pos[(pos < c0 + window) | (pos > c1 - window)] = np.nan
        return pos, K, level

    coarse, _, level = measure(zero)
    # drift from the lattice ahead of the front (unchanged since frame 0)
    yy, xx = np.mgrid[0:H, 0:W]
    u0 = (xx - p0[0]) * e[0] + (yy - p0[1]) * e[1]
    ahead_of = _ahead_threshold(coarse)
    regions = np.stack([interior & (u0 > a + 2 * width) for a in ahead_of])
    drift = lattice_drift(phases, plan.g_reference, regions)
    pos, K, level = measure(drift)
    log.info("lattice front: GPA width %.1f px, margin %d px, step %.4f, %d/%d frames measured",
             width, margin, level, int(np.isfinite(pos).sum()), T)
    return LatticeFronts(measured_px=pos, kymograph=K.astype(np.float32), origin_xy=p0, direction_xy=e,
                         drift_px=drift, width_px=width, margin_px=float(margin), g_vectors=plan.g_reference.copy(),
                         level=level)


def _ahead_threshold(coarse):
    """Per frame, the position beyond which the lattice is unreacted: the front so far
    (fronts do not retreat); -inf before it enters the field, +inf after it has left."""
    fin = np.isfinite(coarse)
    T = len(coarse)
    if not fin.any():
        return np.full(T, -np.inf)
    first, last = np.nonzero(fin)[0][[0, -1]]
    out = np.maximum.accumulate(np.where(fin, coarse, -np.inf))
    out[:first] = -np.inf
    out[last + 1 :] = np.inf
    return out


def _half_way(K, window):
    """Half-way point of the step (reacted side at index 0) in each row of ``K`` (T, M).

    The unreacted level is 0 (change since frame 0); the reacted level is the median,
    over frames, of the profile more than ``window`` px behind a coarse split.
    """
    from mltem.fronts._track import front_positions

    Kf = np.where(np.isfinite(K), K, 0.0)
    coarse = front_positions(Kf, window_px=window)
    T, M = Kf.shape
    behind = [np.mean(Kf[t, : int(coarse[t]) - window]) for t in range(T) if int(coarse[t]) - window >= 4]
    level = float(np.median(behind)) if behind else float(np.max(np.abs(Kf)))
    if abs(level) < 1e-6:
        return np.full(T, np.nan), level
    pos = front_positions(Kf, window_px=window, levels=(level, 0.0))
    return pos, level
