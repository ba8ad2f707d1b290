"""Where to measure: foreground, wire axis (PCA + curved centreline), particle outline,
drift between frames and kymographs sampled along an axis.

Coordinates: points are ``(x, y)`` in px of the reference frame (frame 0); arrays are
(y, x). Drift ``(dy, dx)`` of frame ``t`` means the specimen point seen at ``p`` in frame
0 is seen at ``p + (dx, dy)`` in frame ``t``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

__all__ = [
    "FrontAxis",
    "GEOMETRIES",
    "EDGE_RULES",
    "foreground_mask",
    "detect_axis",
    "axis_from_points",
    "measure_drift",
    "specimen_zone",
    "sample_kymograph",
]

#: What :func:`detect_axis` can return; ``"auto"`` picks one.
GEOMETRIES = ("wire", "core-shell", "planar")


@dataclass
class FrontAxis:
    """The line (or radius) along which a front position is measured.

    Attributes
    ----------
    geometry : str
        ``"wire"``, ``"planar"`` (positions along a polyline) or ``"core-shell"``
        (depth below the particle surface along the radius).
    points : numpy.ndarray
        (M, 2) points ``(x, y)`` in px at 1 px arc-length spacing; point 0 is the origin
        of the position (contact point, starting edge, or for core-shell the surface:
        the points then run inward along a radius, for drawing only).
    normals : numpy.ndarray
        (M, 2) unit normals ``(x, y)`` to the axis.
    half_width_px : float
        Half-width of the band averaged across the axis.
    centre : tuple of float
        Particle centre ``(x, y)`` in px (core-shell and planar), else the axis midpoint.
    radius_px : float
        Particle radius (core-shell, planar) or wire radius, px.
    """

    geometry: str
    points: np.ndarray
    normals: np.ndarray
    half_width_px: float
    centre: tuple
    radius_px: float

    @property
    def length_px(self) -> float:
        return float(len(self.points) - 1)


def foreground_mask(image, *, smooth_px: float = 2.0) -> np.ndarray:
    """Material (wire or particle) vs background by Otsu's threshold on a smoothed image.

    The material is the side of the threshold that touches less of the image border; the
    largest connected piece is kept and its holes filled.

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) intensities.
    smooth_px : float
        Gaussian smoothing before thresholding, px.

    Returns
    -------
    numpy.ndarray
        (y, x) bool.
    """
    from skimage.filters import threshold_otsu

    img = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), smooth_px)
    if not np.isfinite(img).all() or img.max() == img.min():
        return np.zeros(img.shape, bool)
    thr = threshold_otsu(img)
    low = img < thr
    border = np.concatenate([low[0], low[-1], low[:, 0], low[:, -1]])
    mask = low if border.mean() <= 0.5 else ~low
    lab, nlab = ndimage.label(mask)
    if nlab == 0:
        return mask
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, nlab + 1))
    mask = lab == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(mask)


def _resample_polyline(pts: np.ndarray, step: float = 1.0) -> np.ndarray:
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < 2 * step:
        raise ValueError("the axis is shorter than 2 px")
    si = np.arange(0.0, s[-1] + 1e-9, step)
    return np.stack([np.interp(si, s, pts[:, 0]), np.interp(si, s, pts[:, 1])], axis=1)


def _normals(pts: np.ndarray) -> np.ndarray:
    tan = np.gradient(pts, axis=0)
    tan /= np.maximum(np.hypot(*tan.T), 1e-12)[:, None]
    return np.stack([-tan[:, 1], tan[:, 0]], axis=1)


def axis_from_points(x0: float, y0: float, x1: float, y1: float, *, half_width_px: float = 3.0,
                     geometry: str = "wire") -> FrontAxis:
    """A straight axis from ``(x0, y0)`` (origin of the position) to ``(x1, y1)``, px."""
    if geometry not in ("wire", "planar"):
        raise ValueError(f"a straight axis serves 'wire' or 'planar', got {geometry!r}")
    if not half_width_px > 0:
        raise ValueError(f"half_width_px must be > 0, got {half_width_px}")
    pts = _resample_polyline(np.array([[x0, y0], [x1, y1]], float))
    mid = pts[len(pts) // 2]
    return FrontAxis(geometry, pts, _normals(pts), float(half_width_px), (float(mid[0]), float(mid[1])), float(half_width_px))


def _wire_axis(mask: np.ndarray) -> FrontAxis:
    H, W = mask.shape
    ys, xs = np.nonzero(mask)
    c = np.array([xs.mean(), ys.mean()])
    P = np.stack([xs, ys], axis=1) - c
    w, V = np.linalg.eigh(P.T @ P)
    e1 = V[:, 1]
    e2 = np.array([-e1[1], e1[0]])
    u, v = P @ e1, P @ e2
    deg = 2 if len(u) > 50 else 1
    coef = np.polyfit(u, v, deg)
    uu = np.arange(u.min() - 3, u.max() + 3, 0.25)
    vv = np.polyval(coef, uu)
    pts = c + uu[:, None] * e1 + vv[:, None] * e2
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= W - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= H - 1)
    ix = np.clip(np.round(pts[:, 0]).astype(int), 0, W - 1)
    iy = np.clip(np.round(pts[:, 1]).astype(int), 0, H - 1)
    on = inside & mask[iy, ix]
    if on.sum() < 8:
        raise ValueError("the wire axis leaves the material almost everywhere")
    i0, i1 = np.nonzero(on)[0][[0, -1]]
    # Extend past the far ends by 30 % of the length (inside the frame): the wire may elongate.
    ext = int(0.3 * (i1 - i0))
    keep = np.arange(max(0, i0 - ext), min(len(pts), i1 + ext + 1))
    keep = keep[inside[keep]]
    length = (i1 - i0) * 0.25
    radius = max(1.0, mask.sum() / max(length, 1.0) / 2)
    full = _resample_polyline(pts[keep])
    # Remember where the material ended (frame 0) so the caller can orient and limit.
    start_off = (i0 - keep[0]) * 0.25 if keep[0] <= i0 else 0.0
    ax = FrontAxis("wire", full, _normals(full), max(1.0, 0.7 * radius), (float(c[0]), float(c[1])), float(radius))
    ax._material = (start_off, start_off + length)  # type: ignore[attr-defined]
    return ax


def detect_axis(reference, *, frames_late=None, geometry: str = "auto", mask=None,
                edge: str = "gradient", edge_image=None) -> FrontAxis:
    """Find the wire axis or particle outline, and orient it so the position starts at the
    contact point / the edge where the reaction started.

    Parameters
    ----------
    reference : numpy.ndarray
        (y, x) early frame (or mean of the first frames), mostly unreacted.
    frames_late : numpy.ndarray, optional
        (y, x) late frame (drift-aligned to ``reference``); the change between the two
        tells which end of a wire is the contact and where a planar front came from.
    geometry : {"auto", "wire", "core-shell", "planar"}
        ``"auto"``: elongated material (PCA aspect ratio > 2.5) is a wire; a compact
        particle whose change is off-centre has a planar front, else core-shell.
    mask : numpy.ndarray, optional
        (y, x) bool material mask; default :func:`foreground_mask` of ``reference``.
    edge : {"gradient", "halfway"}
        How a particle's sub-pixel radius (the origin of core-shell depths and of planar
        positions) is read from the azimuthal mean profile of ``reference``: the steepest
        point of the edge (default; for intensities, where the level just inside the edge
        differs from the particle's interior) or the half-way crossing between the
        interior and the background (for a material probability, 1 inside and 0 outside).
    edge_image : numpy.ndarray, optional
        (y, x) image the particle's radius is read from (default ``reference``), e.g. the
        intensity when ``reference`` is a network's probability map.

    Returns
    -------
    FrontAxis

    Raises
    ------
    ValueError
        No material found, or an unknown geometry.
    """
    if geometry not in ("auto", *GEOMETRIES):
        raise ValueError(f"geometry must be 'auto' or one of {GEOMETRIES}, got {geometry!r}")
    if edge not in EDGE_RULES:
        raise ValueError(f"edge must be one of {EDGE_RULES}, got {edge!r}")
    reference = np.asarray(reference, dtype=np.float32)
    H, W = reference.shape
    edge_src = reference if edge_image is None else np.asarray(edge_image, dtype=np.float32)
    if edge_src.shape != (H, W):
        raise ValueError(f"edge_image must have the reference's shape {(H, W)}, got {edge_src.shape}")
    if mask is None:
        mask = foreground_mask(reference)
    full_field = mask.mean() > 0.9 or mask.sum() < 30
    if full_field:
        mask = np.ones_like(mask)
    ys, xs = np.nonzero(mask)
    c = np.array([xs.mean(), ys.mean()])
    P = np.stack([xs, ys], axis=1) - c
    ev = np.linalg.eigvalsh(P.T @ P / len(P))
    aspect = math.sqrt(ev[1] / max(ev[0], 1e-9))
    change = None
    if frames_late is not None:
        diff = ndimage.gaussian_filter(np.asarray(frames_late, np.float32) - reference, 2.5)
        change = np.abs(diff)
        change_all = np.clip(change - np.median(change), 0, None)
        change = change_all * mask
    if geometry == "auto":
        if full_field:
            geometry = "planar"
        elif aspect > 2.5:
            geometry = "wire"
        else:
            geometry = "core-shell"
            if change is not None and change.sum() > 0:
                # core-shell changes alike in every direction; a planar front does not
                ang = np.arctan2(np.arange(H)[:, None] - c[1], np.arange(W)[None] - c[0])
                sector = ((ang + np.pi) / (2 * np.pi) * 8).astype(int) % 8
                sums = np.bincount(sector.ravel(), weights=change.ravel(), minlength=8)
                if sums.std() / max(sums.mean(), 1e-12) > 0.5:
                    geometry = "planar"
    if geometry == "wire" and not full_field:
        ax = _wire_axis(mask)
        if change is not None:
            # The contact end is the one that changed more, inside the wire (contrast) and
            # just outside it (swelling). Where a brighter reacted phase cancels the extra
            # thickness, the inside barely changes while the elongating far end moves; the
            # swelling still shows. Each signal votes by its end-to-end ratio; medians over
            # a quarter of the length, so that the far end's cap, which moves as the wire
            # elongates, does not count for much.
            s0, s1 = ax._material  # type: ignore[attr-defined]
            q = max(2, int(0.25 * (s1 - s0)))
            r = ax.radius_px
            log_ratio = 0.0
            for prof in (_band_profile(change, ax), _band_profile(change_all, ax, band=(0.8 * r, 1.5 * r))):
                a = float(np.median(prof[int(s0) + 2 : int(s0) + 2 + q]))
                b = float(np.median(prof[int(s1) - 2 - q : int(s1) - 2]))
                log_ratio += math.log((b + 1e-6) / (a + 1e-6))
            if log_ratio > 0:  # the far end changed more: it is the contact
                ax = _flip(ax, s1)
            else:
                ax = _trim(ax, s0)
        else:
            ax = _trim(ax, ax._material[0])  # type: ignore[attr-defined]
        return ax
    radius = math.sqrt(mask.sum() / math.pi)
    if geometry == "core-shell":
        return _core_shell_axis(c, _edge_radius(edge_src, c, radius, rule=edge))
    # planar: from the edge where the change is, through the centre
    if change is not None and change.sum() > 0:
        cc = np.array([(change * np.arange(W)).sum(), (change * np.arange(H)[:, None]).sum()]) / change.sum()
        d = c - cc
    else:
        d = np.array([1.0, 0.0])
    d /= max(np.hypot(*d), 1e-9)
    if full_field:
        # extent of the frame along d through the centre
        corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float) - c
        proj = corners @ d
        p0, p1 = c + proj.min() * d, c + proj.max() * d
        half = 0.35 * min(H, W)
        radius = float(proj.max() - proj.min()) / 2
    else:
        t = np.arange(-1.5 * radius, 1.5 * radius, 0.25)
        line = c + t[:, None] * d
        ix = np.clip(np.round(line[:, 0]).astype(int), 0, W - 1)
        iy = np.clip(np.round(line[:, 1]).astype(int), 0, H - 1)
        ok = mask[iy, ix] & (line[:, 0] >= 0) & (line[:, 0] <= W - 1) & (line[:, 1] >= 0) & (line[:, 1] <= H - 1)
        i0, i1 = np.nonzero(ok)[0][[0, -1]]
        p0, p1 = line[i0], line[i1]
        # start on the particle's sub-pixel edge (the Otsu mask sits inside a soft edge)
        r_edge = _edge_radius(edge_src, c, radius, rule=edge)
        if abs(r_edge - radius) < 0.2 * radius:
            p0 = c - r_edge * d
        half = 0.4 * radius
    pts = _resample_polyline(np.array([p0, p1]))
    return FrontAxis("planar", pts, _normals(pts), float(half), (float(c[0]), float(c[1])), float(radius))


def _core_shell_axis(c, radius: float) -> FrontAxis:
    """Core-shell axis: centre ``c`` (x, y) and surface radius; points run inward from the surface."""
    c = np.asarray(c, dtype=float)
    pts = c + np.stack([np.linspace(radius, 0, int(radius) + 1), np.zeros(int(radius) + 1)], axis=1)
    return FrontAxis("core-shell", pts, _normals(pts) if len(pts) > 1 else pts * 0, radius, (float(c[0]), float(c[1])), radius)


#: Rules of :func:`detect_axis` for a particle's sub-pixel edge.
EDGE_RULES = ("gradient", "halfway")


def _edge_radius(image, c, radius, *, rule: str = "halfway"):
    """Sub-pixel particle radius from the azimuthal mean profile about ``c`` (x, y).

    ``"halfway"``: crossing of the level half-way between the interior (0.3-0.7 of the
    radius) and the background (beyond 1.3). ``"gradient"``: the steepest point of the
    profile within 6 px of ``radius`` (smoothed by 0.5 px, parabolic sub-pixel peak), in
    the direction of the interior-to-background change. A thick particle's interior is
    darker than the material just inside its edge, so the half-way level lies on the inner
    part of the edge and the half-way crossing sits inside it (by 0.3-1.7 px on the
    simulated particles, more where the surface layer is brighter); the steepest point does
    not depend on the interior level. Falls back to ``"halfway"`` when the steepest point
    lies on the border of the search.
    """
    if rule not in EDGE_RULES:
        raise ValueError(f"rule must be one of {EDGE_RULES}, got {rule!r}")
    r = np.arange(0, 1.6 * radius, 0.5)
    prof = _radial_profile(image[None], c, r)[0]
    inner = np.median(prof[(r > 0.3 * radius) & (r < 0.7 * radius)])
    outer = np.median(prof[r > 1.3 * radius]) if (r > 1.3 * radius).any() else prof[-1]
    sgn = np.sign(outer - inner) or 1.0
    if rule == "gradient":
        step = 0.25
        rr = np.arange(max(0.0, radius - 6.0), radius + 6.0 + 1e-9, step)
        p = ndimage.gaussian_filter1d(_radial_profile(image[None], c, rr)[0].astype(np.float64), 0.5 / step)
        g = sgn * np.gradient(p)
        i = int(np.argmax(g[1:-1])) + 1 if len(g) > 4 else 0
        if 2 <= i <= len(g) - 3 and g[i] > 0:
            y0, y1, y2 = g[i - 1 : i + 2]
            den = y0 - 2 * y1 + y2
            return float(rr[i] + (0.5 * step * (y0 - y2) / den if den < 0 else 0.0))
    half = 0.5 * (inner + outer)
    above = np.nonzero((sgn * (prof - half) > 0) & (r > 0.5 * radius))[0]
    if not len(above):
        return radius
    j = above[0]
    if j == 0:
        return radius
    f = (half - prof[j - 1]) / (prof[j] - prof[j - 1] + 1e-12)
    return float(r[j - 1] + f * (r[j] - r[j - 1]))


def _radial_profile(frames, c, r, *, n_angles: int = 96, shifts=None):
    """(T, len(r)) azimuthal means about ``c`` (x, y)."""
    ang = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    X = c[0] + r[:, None] * np.cos(ang)[None]
    Y = c[1] + r[:, None] * np.sin(ang)[None]
    out = np.empty((len(frames), len(r)), np.float32)
    for t, f in enumerate(frames):
        dy, dx = (0.0, 0.0) if shifts is None else shifts[t]
        v = ndimage.map_coordinates(f, [Y + dy, X + dx], order=1, mode="nearest")
        out[t] = v.mean(axis=1)
    return out


def _band_profile(image, ax: FrontAxis, band=None):
    """Mean of ``image`` across the axis (``|v| <= half_width_px``, or ``band[0] <= |v| <= band[1]``)."""
    if band is None:
        nv = max(3, int(2 * ax.half_width_px) + 1)
        v = np.linspace(-ax.half_width_px, ax.half_width_px, nv)
    else:
        side = np.linspace(band[0], band[1], max(2, int(round(band[1] - band[0])) + 1))
        v = np.concatenate([-side[::-1], side])
    X = ax.points[:, 0:1] + v[None] * ax.normals[:, 0:1]
    Y = ax.points[:, 1:2] + v[None] * ax.normals[:, 1:2]
    return ndimage.map_coordinates(image, [Y, X], order=1, mode="nearest").mean(axis=1)


def _trim(ax: FrontAxis, s0: float) -> FrontAxis:
    i = int(round(s0))
    pts = ax.points[i:]
    out = FrontAxis(ax.geometry, pts, ax.normals[i:], ax.half_width_px, ax.centre, ax.radius_px)
    m0, m1 = ax._material  # type: ignore[attr-defined]
    out._material = (0.0, m1 - i)  # type: ignore[attr-defined]
    return out


def _flip(ax: FrontAxis, s1: float) -> FrontAxis:
    i = int(round(s1)) + 1
    pts = ax.points[:i][::-1].copy()
    out = FrontAxis(ax.geometry, pts, _normals(pts), ax.half_width_px, ax.centre, ax.radius_px)
    m0, m1 = ax._material  # type: ignore[attr-defined]
    out._material = (0.0, m1 - m0)  # type: ignore[attr-defined]
    return out


def specimen_zone(material, *, margin_fraction: float = 0.1) -> np.ndarray:
    """The specimen and the room it may swell or lengthen into: ``material`` (y, x bool)
    dilated by ``margin_fraction`` of the frame's smaller side (at least 4 px). Passed to
    :func:`measure_drift` as ``ignore``."""
    material = np.asarray(material, bool)
    if not material.any():
        return material.copy()
    r = max(4, int(round(margin_fraction * min(material.shape))))
    # distance to the material on a 4x coarser grid (the zone only weights the correlation)
    b = 4 if min(material.shape) >= 64 else 1
    H, W = material.shape
    coarse = np.zeros((-(-H // b), -(-W // b)), bool)
    yy, xx = np.nonzero(material)
    coarse[yy // b, xx // b] = True
    d = ndimage.distance_transform_edt(~coarse) * b
    return np.repeat(np.repeat(d <= r, b, axis=0), b, axis=1)[:H, :W] | material


def measure_drift(frames, reference, *, bin_px: int | None = None, ignore=None,
                  max_step_px: float | None = 4.0) -> np.ndarray:
    """Shift of each frame relative to ``reference`` by cross-correlation (sub-pixel).

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x).
    reference : numpy.ndarray
        (y, x).
    bin_px : int, optional
        Bin frames by this factor first (speed); default keeps >= 128 px.
    ignore : numpy.ndarray, optional
        (y, x) bool, pixels of ``reference`` to leave out (e.g. the reacting specimen,
        dilated): they are faded out smoothly so that the registration rests on what does
        not change, the support film. Ignored if it would leave less than 15 % of the frame.
    max_step_px : float or None
        Drift is continuous: the correlation peak of frame ``t`` is searched within this
        many px of frame ``t - 1``'s shift (None: anywhere). Guards against locking onto a
        changing specimen in long movies.

    Returns
    -------
    numpy.ndarray
        (frame, 2) drift ``(dy, dx)`` in px.
    """
    frames = np.asarray(frames)
    H, W = reference.shape
    b = bin_px or max(1, min(H, W) // 256)

    def prep(img):
        img = np.asarray(img, np.float32)
        if b > 1:
            h, w = (H // b) * b, (W // b) * b
            img = img[:h, :w].reshape(h // b, b, w // b, b).mean(axis=(1, 3))
        img = img - img.mean()
        return img * win

    h, w = H // b, W // b
    win = (np.hanning(h)[:, None] * np.hanning(w)[None]).astype(np.float32)
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        if keep.shape != (H, W):
            raise ValueError(f"ignore must have the reference's shape {(H, W)}, got {keep.shape}")
        if keep.mean() >= 0.15:
            keep = ndimage.gaussian_filter(keep.astype(np.float32), 2.0)
            if b > 1:
                keep = keep[: h * b, : w * b].reshape(h, b, w, b).mean(axis=(1, 3))
            win = win * keep
    ky = sfft.fftfreq(h)[:, None]
    kx = sfft.rfftfreq(w)[None]
    k2 = ky**2 + kx**2
    # band-pass (difference of Gaussians, 0.7 .. 4 binned px): fine fixed texture of the
    # support film locks the registration; the moving front and swelling are smooth.
    lp = (np.exp(-2 * (np.pi * 0.7) ** 2 * k2) - np.exp(-2 * (np.pi * 4.0) ** 2 * k2)).astype(np.float32)
    F0 = np.conj(sfft.rfft2(prep(reference))) * lp**2
    out = np.zeros((len(frames), 2))
    yy = np.fft.fftfreq(h, 1.0 / h)[:, None]  # signed lags, binned px
    xx = np.fft.fftfreq(w, 1.0 / w)[None]
    prev = None
    for t, f in enumerate(frames):
        cc = sfft.irfft2(sfft.rfft2(prep(f)) * F0, s=(h, w))
        if max_step_px is not None and prev is not None:
            r = max(float(max_step_px) / b, 1.5)
            near = (yy - prev[0] / b) ** 2 + (xx - prev[1] / b) ** 2 <= r * r
            cc = np.where(near, cc, -np.inf)
        iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
        sub = []
        for axis, i, n in ((0, iy, h), (1, ix, w)):
            idx = [(i - 1) % n, i, (i + 1) % n]
            v = cc[idx, ix] if axis == 0 else cc[iy, idx]
            den = v[0] - 2 * v[1] + v[2]
            d = 0.5 * (v[0] - v[2]) / den if den < 0 and np.isfinite(den) else 0.0
            p = i + float(np.clip(d, -0.5, 0.5))
            sub.append(p - n if p > n / 2 else p)
        out[t] = np.array(sub) * b
        prev = out[t]
    return out


def sample_kymograph(frames, axis: FrontAxis, *, shifts=None, step_px: float = 1.0, band=None) -> np.ndarray:
    """Intensity along the axis in every frame, averaged across the band.

    For ``"core-shell"`` the profile is the azimuthal mean, ordered from the particle
    surface (index 0, radius ``axis.radius_px``) inward, ``step_px`` apart.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x).
    axis : FrontAxis
    shifts : numpy.ndarray, optional
        (frame, 2) drift ``(dy, dx)`` from :func:`measure_drift`.
    step_px : float
        Sample spacing along a radius (core-shell).
    band : tuple of float, optional
        ``(v_min, v_max)`` px: average over ``v_min <= |v| <= v_max`` on both sides of
        the axis instead of ``|v| <= half_width_px`` (e.g. outside a wire, to see it swell).

    Returns
    -------
    numpy.ndarray
        (frame, M) float32 kymograph; column ``j`` lies ``j`` px from the origin.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (frame, y, x), got shape {frames.shape}")
    if axis.geometry == "core-shell":
        r = axis.radius_px - np.arange(0, axis.radius_px + 1e-9, step_px)
        r = np.clip(r, 0, None)
        return _radial_profile(frames, np.asarray(axis.centre), r, shifts=shifts)
    if band is None:
        nv = max(3, int(round(2 * axis.half_width_px)) + 1)
        v = np.linspace(-axis.half_width_px, axis.half_width_px, nv)
    else:
        nv = max(2, int(round(band[1] - band[0])) + 1)
        side = np.linspace(band[0], band[1], nv)
        v = np.concatenate([-side[::-1], side])
    X = axis.points[:, 0:1] + v[None] * axis.normals[:, 0:1]
    Y = axis.points[:, 1:2] + v[None] * axis.normals[:, 1:2]
    out = np.empty((len(frames), len(axis.points)), np.float32)
    for t, f in enumerate(frames):
        dy, dx = (0.0, 0.0) if shifts is None else shifts[t]
        out[t] = ndimage.map_coordinates(f, [Y + dy, X + dx], order=1, mode="nearest").mean(axis=1)
    return out
