"""Synthetic in-situ movies of reaction fronts with exact front positions.

Four scenes, all rendered analytically frame by frame (so drift is exact to sub-pixel),
then blurred and given shot and read noise like a real camera:

- ``"wire"``: a nanowire (straight or bending) lithiating from its contact point at the
  image border; behind the front it swells and elongates, and its contrast changes.
  Front position = arc length along the wire axis from the contact point.
- ``"core-shell"``: a particle lithiating radially from its surface inward; the shell
  swells. Front position = depth of the front below the initial (frame 0) surface.
- ``"planar"``: a particle crossed by a planar phase boundary (e.g. Li4Ti5O12 ->
  Li7Ti5O12). Front position = distance of the boundary from the particle edge where it
  started, along the direction it moves.
- ``"lattice"``: a lattice-resolved crystal filling the field whose reacted part has an
  expanded lattice, crossed by a planar front from one border. Front position = distance
  from that border along the direction of motion.

Positions follow the growth law ``x = x0 + k (t - t0)^n`` with multiplicative
fluctuations. Masks label 0 background, 1 unreacted, 2 reacted material.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, special

__all__ = [
    "FrontMovie",
    "FRONT_GEOMETRIES",
    "FRONT_CLASSES",
    "growth_law",
    "simulate_front_movie",
]

#: Scenes :func:`simulate_front_movie` renders.
FRONT_GEOMETRIES = ("wire", "core-shell", "planar", "lattice")
#: Mask labels in order: 0, 1, 2.
FRONT_CLASSES = ("background", "unreacted", "reacted")


@dataclass
class FrontMovie:
    """A synthetic front movie and its ground truth.

    Attributes
    ----------
    frames : numpy.ndarray
        (frame, y, x) float32 detector counts.
    front_px, front_nm : numpy.ndarray
        (frame,) exact front position in px and nm (see the module docstring for what
        the position measures in each geometry).
    masks : numpy.ndarray
        (frame, y, x) uint8: 0 background, 1 unreacted, 2 reacted.
    time_s : numpy.ndarray
        (frame,) time of each frame in s.
    pixel_size_nm, frame_time_s : float
        Calibration.
    geometry : str
        One of :data:`FRONT_GEOMETRIES`.
    axis_px : numpy.ndarray
        (M, 2) points ``(x, y)`` in px along which the position is measured, in frame-0
        coordinates, starting at the origin of the position (contact point, initial
        surface or starting edge). For core-shell: the particle centre and a surface point.
    drift_px : numpy.ndarray
        (frame, 2) specimen drift ``(dy, dx)`` in px; frame 0 has none.
    params : dict
        Every setting used, including the growth law ``n``, ``k_px`` (px / s^n),
        ``k_nm``, ``x0_px`` and ``t0_s``.
    """

    frames: np.ndarray
    front_px: np.ndarray
    front_nm: np.ndarray
    masks: np.ndarray
    time_s: np.ndarray
    pixel_size_nm: float
    frame_time_s: float
    geometry: str
    axis_px: np.ndarray
    drift_px: np.ndarray
    params: dict = field(default_factory=dict)


def growth_law(t, *, k: float, n: float, x0: float = 0.0, t0: float = 0.0):
    """Front position ``x = x0 + k (t - t0)^n`` (zero growth before ``t0``).

    Parameters
    ----------
    t : array_like
        Times in s.
    k : float
        Rate in length / s^n.
    n : float
        Growth exponent (0.5: diffusion controlled, 1: reaction controlled).
    x0 : float
        Position at ``t0`` (length).
    t0 : float
        Time the reaction starts, s.

    Returns
    -------
    numpy.ndarray
        Positions in the length unit of ``k`` and ``x0``.

    Examples
    --------
    >>> growth_law([0.0, 1.0, 4.0], k=2.0, n=0.5)
    array([0., 2., 4.])
    """
    if not n > 0:
        raise ValueError(f"n must be > 0, got {n}")
    dt = np.clip(np.asarray(t, dtype=float) - t0, 0.0, None)
    return x0 + k * dt**n


def _fluctuating(time_s, *, k, n, x0, t0, fluctuation, rng):
    """Growth law times exp(AR(1) noise), made non-decreasing (fronts stall, never retreat).

    The monotone trajectory is the least-squares non-decreasing fit to the fluctuating one
    (pool adjacent violators): unlike a running maximum it does not ratchet the front ahead
    of the law, so the movie's growth exponent stays the law's ``n`` on average.
    """
    eps = np.zeros(len(time_s))
    if fluctuation > 0:
        rho = 0.6
        z = rng.normal(0.0, fluctuation * math.sqrt(1 - rho**2), len(time_s))
        for i in range(1, len(time_s)):
            eps[i] = rho * eps[i - 1] + z[i]
    x = x0 + (growth_law(time_s, k=k, n=n, t0=t0) * np.exp(eps))
    return _non_decreasing(x)


def _non_decreasing(x: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing sequence closest to ``x`` (pool adjacent violators)."""
    means, sizes = [], []
    for v in np.asarray(x, dtype=float):
        means.append(v)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, s2 = means.pop(), sizes.pop()
            m1, s1 = means.pop(), sizes.pop()
            means.append((m1 * s1 + m2 * s2) / (s1 + s2))
            sizes.append(s1 + s2)
    return np.repeat(means, sizes)


def _drift(n_frames, drift_px, rng):
    d = np.zeros((n_frames, 2))
    if drift_px > 0 and n_frames > 1:
        d[1:] = np.cumsum(rng.normal(0.0, drift_px, (n_frames - 1, 2)), axis=0)
    return d


def _texture(shape, rng, *, scale_px: float):
    """Smooth random field with unit standard deviation (amorphous / bend-contour texture)."""
    t = ndimage.gaussian_filter(rng.standard_normal(shape), scale_px, mode="wrap")
    return t / (t.std() + 1e-12)


def _camera(ideal, *, dose, read_noise, blur_px, rng):
    """Blur, Poisson shot noise at ``dose`` counts per unit intensity, Gaussian read noise."""
    if blur_px > 0:
        ideal = ndimage.gaussian_filter(ideal, (0, blur_px, blur_px), mode="nearest")
    if dose is None:
        return ideal.astype(np.float32)
    counts = rng.poisson(np.clip(ideal, 0, None) * dose).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, counts.shape).astype(np.float32)
    return counts


def _support_film(H, W, drift, masks, rng, amplitude):
    """Multiplicative support-film texture and contamination dots that drift with the specimen."""
    pad = int(np.ceil(np.abs(drift).max())) + 8
    film = 1 + amplitude * _texture((H + 2 * pad, W + 2 * pad), rng, scale_px=1.2)
    yy, xx = np.mgrid[0 : H + 2 * pad, 0 : W + 2 * pad]
    free = masks[0] == 0
    for _ in range(int(rng.integers(3, 7))):
        for _try in range(20):
            y, x = rng.integers(0, H), rng.integers(0, W)
            if free[max(0, y - 6) : y + 7, max(0, x - 6) : x + 7].all():
                r = rng.uniform(1.5, 3.5)
                film *= 1 - 0.25 * np.exp(-((yy - y - pad) ** 2 + (xx - x - pad) ** 2) / (2 * r * r))
                break
    out = np.empty((len(drift), H, W))
    for i, (dy, dx) in enumerate(drift):
        out[i] = ndimage.shift(film, (dy, dx), order=1, mode="nearest")[pad : pad + H, pad : pad + W]
    return out


def _soft_step(z, width):
    """1 for z << 0, 0 for z >> 0, erf edge of ``width`` px."""
    return 0.5 * special.erfc(z / max(width, 1e-6))


def simulate_front_movie(
    geometry: str = "wire",
    *,
    n_frames: int = 40,
    shape: tuple[int, int] = (128, 256),
    pixel_size_nm: float = 2.0,
    frame_time_s: float = 0.5,
    n: float = 0.5,
    k_px: float | None = None,
    travel_fraction: float = 0.7,
    t0_s: float = 0.0,
    fluctuation: float = 0.02,
    angle_deg: float | None = None,
    bend: float | None = None,
    radius_px: float | None = None,
    swelling: float = 0.3,
    elongation: float = 0.15,
    front_contrast: float | None = None,
    front_width_px: float = 1.5,
    lattice_period_px: float = 6.0,
    lattice_expansion: float = 0.06,
    dose: float | None = 60.0,
    read_noise: float = 2.0,
    blur_px: float = 1.0,
    drift_px: float = 0.3,
    support_texture: float = 0.05,
    seed: int | None = 0,
) -> FrontMovie:
    """Render a movie of a moving reaction front with its exact positions and masks.

    Parameters
    ----------
    geometry : {"wire", "core-shell", "planar", "lattice"}
        Scene; see the module docstring.
    n_frames : int
        Frames (>= 2).
    shape : tuple of int
        Frame size (y, x) in px (each >= 32).
    pixel_size_nm : float
        nm per px.
    frame_time_s : float
        s per frame; frame ``i`` is at ``i * frame_time_s``.
    n : float
        Growth exponent, 0.3 .. 1.2 in practice.
    k_px : float, optional
        Rate in px / s^n. Default: the front travels ``travel_fraction`` of the available
        distance in the movie.
    travel_fraction : float
        See ``k_px``.
    t0_s : float
        Start of the reaction, s (positions are 0 before it).
    fluctuation : float
        Relative size of the random fluctuations about the growth law (AR(1) noise).
    angle_deg : float, optional
        Wire axis / front direction, degrees from +x towards +y. Default random (small
        for wires, any for planar, 0 for lattice).
    bend : float, optional
        Wires: lateral deflection of the tip in px (0 = straight). Default random.
    radius_px : float, optional
        Wire radius or particle radius in px. Default random, scaled to the frame.
    swelling : float
        Wires: relative radius increase behind the front; core-shell: relative volume
        increase of the shell.
    elongation : float
        Wires: relative length increase of the reacted part.
    front_contrast : float, optional
        Relative intensity change of the material across the front (reacted vs
        unreacted; negative: reacted darker). Default random, |c| in 0.2 .. 0.4.
    front_width_px : float
        Width of the front's erf profile in px.
    lattice_period_px : float
        Lattice scene: fringe period of the unreacted crystal in px.
    lattice_expansion : float
        Lattice scene: relative lattice expansion of the reacted part (0.06 = 6 %).
    dose : float or None
        Mean counts per px of the bright background; None: no noise.
    read_noise : float
        Gaussian read noise in counts.
    blur_px : float
        Gaussian blur sigma in px (probe/defocus/sample vibration).
    drift_px : float
        Standard deviation of the frame-to-frame drift step in px (random walk).
    support_texture : float
        Relative amplitude of the support film's granular texture; a few small
        contamination dots are added too. They drift with the specimen (as in real
        movies, they are what drift correction locks on to).
    seed : int or None
        Seed of the random generator.

    Returns
    -------
    FrontMovie
    """
    if geometry not in FRONT_GEOMETRIES:
        raise ValueError(f"geometry must be one of {FRONT_GEOMETRIES}, got {geometry!r}")
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f"shape must be (y, x) with both >= 32 px, got {shape}")
    if not (pixel_size_nm > 0 and frame_time_s > 0):
        raise ValueError("pixel_size_nm and frame_time_s must be > 0")
    if not 0.05 <= n <= 3:
        raise ValueError(f"n must lie in 0.05 .. 3, got {n}")
    rng = np.random.default_rng(seed)
    H, W = int(shape[0]), int(shape[1])
    time_s = np.arange(n_frames) * float(frame_time_s)
    drift = _drift(n_frames, drift_px, rng)
    if front_contrast is None:
        front_contrast = float(rng.choice([-1, 1]) * rng.uniform(0.2, 0.4))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    t_span = max(time_s[-1] - t0_s, frame_time_s)
    common = dict(rng=rng, yy=yy, xx=xx, drift=drift, time_s=time_s, n=n, k_px=k_px, t_span=t_span,
                  travel=travel_fraction, t0=t0_s, fluct=fluctuation, c=front_contrast, w=front_width_px)
    if geometry == "wire":
        ideal, masks, front, axis, extra = _wire(**common, angle_deg=angle_deg, bend=bend, radius_px=radius_px,
                                                 swelling=swelling, elongation=elongation)
    elif geometry == "core-shell":
        ideal, masks, front, axis, extra = _core_shell(**common, radius_px=radius_px, swelling=swelling)
    elif geometry == "planar":
        ideal, masks, front, axis, extra = _planar(**common, angle_deg=angle_deg, radius_px=radius_px)
    else:
        ideal, masks, front, axis, extra = _lattice(**common, angle_deg=angle_deg, period=lattice_period_px,
                                                    expansion=lattice_expansion)
    if geometry != "lattice":
        ideal = ideal * _support_film(H, W, drift, masks, rng, support_texture)
    frames = _camera(ideal, dose=dose, read_noise=read_noise, blur_px=blur_px, rng=rng)
    params = dict(
        geometry=geometry, n=float(n), t0_s=float(t0_s), fluctuation=float(fluctuation),
        front_contrast=float(front_contrast), front_width_px=float(front_width_px), dose=dose,
        read_noise=float(read_noise), blur_px=float(blur_px), drift_px=float(drift_px), seed=seed,
        pixel_size_nm=float(pixel_size_nm), frame_time_s=float(frame_time_s), **extra,
    )
    params["k_nm"] = params["k_px"] * pixel_size_nm
    return FrontMovie(
        frames=frames, front_px=front, front_nm=front * pixel_size_nm, masks=masks, time_s=time_s,
        pixel_size_nm=float(pixel_size_nm), frame_time_s=float(frame_time_s), geometry=geometry,
        axis_px=axis, drift_px=drift, params=params,
    )


def _rate(k_px, distance, n, t_span, travel):
    return float(k_px) if k_px is not None else travel * distance / t_span**n


def _wire(*, rng, yy, xx, drift, time_s, n, k_px, t_span, travel, t0, fluct, c, w,
          angle_deg, bend, radius_px, swelling, elongation):
    H, W = yy.shape
    r0 = float(radius_px) if radius_px is not None else rng.uniform(0.045, 0.075) * H
    theta = math.radians(angle_deg if angle_deg is not None else rng.uniform(-12, 12))
    p0 = np.array([0.0, H / 2 + rng.uniform(-0.1, 0.1) * H])  # (x, y): contact point on the left border
    # Wire length: up to ~ 0.8 of the distance to the far border along the axis.
    reach = (W - 1) / max(math.cos(theta), 0.3)
    L0 = 0.78 * reach / (1 + elongation * 0.8)
    if bend is None:
        bend = rng.uniform(-0.12, 0.12) * L0
    bend = float(bend)
    ct, st = math.cos(theta), math.sin(theta)
    # Arc length along the centreline v = bend (u / L0)^2, tabulated.
    ug = np.linspace(-0.5 * L0, 2.0 * L0, 4001)
    slope_g = 2 * bend * ug / L0**2
    sg = np.concatenate([[0.0], np.cumsum(0.5 * (np.hypot(1, slope_g[1:]) + np.hypot(1, slope_g[:-1])) * np.diff(ug))])
    sg -= np.interp(0.0, ug, sg)
    k = _rate(k_px, 0.85 * L0, n, t_span, travel)
    front = _fluctuating(time_s, k=k, n=n, x0=0.0, t0=t0, fluctuation=fluct, rng=rng)
    front = np.minimum(front, 0.95 * L0 * (1 + elongation))
    tex_r = _texture((H + 16, W + 16), rng, scale_px=1.5)
    tex_u = _texture((H + 16, W + 16), rng, scale_px=6.0)
    mu = rng.uniform(0.6, 1.2) / (2 * r0)  # absorption: exp(-mu * thickness), ~0.3..0.55 at the centre
    T = len(time_s)
    ideal = np.empty((T, H, W))
    masks = np.empty((T, H, W), np.uint8)
    for i in range(T):
        dy, dx = drift[i]
        X, Y = xx - dx - p0[0], yy - dy - p0[1]
        u = X * ct + Y * st
        v = -X * st + Y * ct
        vc = bend * (u / L0) ** 2
        slope = 2 * bend * u / L0**2
        d = (v - vc) / np.hypot(1.0, slope)
        s = np.interp(u, ug, sg)
        xf = front[i]
        tip = L0 + elongation * xf / (1 + elongation)
        f = _soft_step(s - xf, w) if xf > 0 else np.zeros_like(s)  # reacted fraction
        r = r0 * (1 + swelling * f)
        beyond = np.clip(s - tip, 0, None)
        th2 = r**2 - d**2 - beyond**2
        inside = th2 > 0
        thick = 2 * np.sqrt(np.clip(th2, 0, None))
        edge = np.clip(thick / 2.0, 0, 1)  # soft material edge for the contrast terms
        ix, iy = int(round(dx)) % 16, int(round(dy)) % 16
        tr = tex_r[iy : iy + H, ix : ix + W]
        tu = tex_u[iy : iy + H, ix : ix + W]
        mat = (1 + c * f + 0.04 * (f * tr + (1 - f) * tu)) * edge + (1 - edge)
        ideal[i] = np.exp(-mu * thick) * mat
        masks[i] = np.where(inside, np.where((s < xf) & (xf > 0), 2, 1), 0)
    axis = _wire_axis_points(p0, ct, st, bend, L0, ug, sg)
    extra = dict(k_px=k, radius_px=r0, angle_deg=math.degrees(theta), bend_px=bend, length_px=L0,
                 swelling=swelling, elongation=elongation, contact_xy=p0.tolist())
    return ideal, masks, front, axis, extra


def _wire_axis_points(p0, ct, st, bend, L0, ug, sg):
    u = np.linspace(0, L0, 64)
    v = bend * (u / L0) ** 2
    return np.stack([p0[0] + u * ct - v * st, p0[1] + u * st + v * ct], axis=1)


def _particle_centre(rng, H, W, R):
    return np.array([W / 2 + rng.uniform(-0.05, 0.05) * W, H / 2 + rng.uniform(-0.05, 0.05) * H])


def _core_shell(*, rng, yy, xx, drift, time_s, n, k_px, t_span, travel, t0, fluct, c, w, radius_px, swelling):
    H, W = yy.shape
    R0 = float(radius_px) if radius_px is not None else rng.uniform(0.30, 0.38) * min(H, W)
    cen = _particle_centre(rng, H, W, R0)
    k = _rate(k_px, R0, n, t_span, travel)
    front = np.minimum(_fluctuating(time_s, k=k, n=n, x0=0.0, t0=t0, fluctuation=fluct, rng=rng), 0.9 * R0)
    mu = rng.uniform(0.15, 0.3) / (2 * R0)
    tex = _texture((H + 16, W + 16), rng, scale_px=1.5)
    T = len(time_s)
    ideal = np.empty((T, H, W))
    masks = np.empty((T, H, W), np.uint8)
    for i in range(T):
        dy, dx = drift[i]
        rho = np.hypot(xx - dx - cen[0], yy - dy - cen[1])
        rc = R0 - front[i]
        Rout = (rc**3 + (1 + swelling) * (R0**3 - rc**3)) ** (1 / 3)
        thick = 2 * np.sqrt(np.clip(Rout**2 - rho**2, 0, None))
        edge = np.clip(thick / 2.0, 0, 1)
        f = 1 - _soft_step(rho - rc, w)  # reacted (shell) fraction in projection
        ix, iy = int(round(dx)) % 16, int(round(dy)) % 16
        tr = tex[iy : iy + H, ix : ix + W]
        mat = (1 + c * f + 0.04 * f * tr) * edge + (1 - edge)
        ideal[i] = np.exp(-mu * thick) * mat * 0.85 ** edge
        masks[i] = np.where(rho < Rout, np.where(rho >= rc, 2, 1), 0)
    axis = np.array([cen, cen + [R0, 0.0]])
    extra = dict(k_px=k, radius_px=R0, centre_xy=cen.tolist(), swelling=swelling)
    return ideal, masks, front, axis, extra


def _planar(*, rng, yy, xx, drift, time_s, n, k_px, t_span, travel, t0, fluct, c, w, angle_deg, radius_px):
    H, W = yy.shape
    R = float(radius_px) if radius_px is not None else rng.uniform(0.30, 0.38) * min(H, W)
    cen = _particle_centre(rng, H, W, R)
    phi = math.radians(angle_deg if angle_deg is not None else rng.uniform(-180, 180))
    e = np.array([math.cos(phi), math.sin(phi)])
    k = _rate(k_px, 2 * R, n, t_span, travel)
    front = np.minimum(_fluctuating(time_s, k=k, n=n, x0=0.0, t0=t0, fluctuation=fluct, rng=rng), 1.9 * R)
    mu = rng.uniform(0.15, 0.3) / (2 * R)
    tex = _texture((H + 16, W + 16), rng, scale_px=1.5)
    T = len(time_s)
    ideal = np.empty((T, H, W))
    masks = np.empty((T, H, W), np.uint8)
    for i in range(T):
        dy, dx = drift[i]
        X, Y = xx - dx - cen[0], yy - dy - cen[1]
        rho = np.hypot(X, Y)
        u = X * e[0] + Y * e[1] + R  # distance from the starting edge along e
        thick = 2 * np.sqrt(np.clip(R**2 - rho**2, 0, None))
        edge = np.clip(thick / 2.0, 0, 1)
        f = _soft_step(u - front[i], w)
        ix, iy = int(round(dx)) % 16, int(round(dy)) % 16
        mat = (1 + c * f + 0.04 * f * tex[iy : iy + H, ix : ix + W]) * edge + (1 - edge)
        ideal[i] = np.exp(-mu * thick) * mat * 0.85 ** edge
        masks[i] = np.where(rho < R, np.where(u < front[i], 2, 1), 0)
    axis = np.array([cen - R * e, cen + R * e])
    extra = dict(k_px=k, radius_px=R, centre_xy=cen.tolist(), angle_deg=math.degrees(phi))
    return ideal, masks, front, axis, extra


def _lattice(*, rng, yy, xx, drift, time_s, n, k_px, t_span, travel, t0, fluct, c, w, angle_deg, period, expansion):
    H, W = yy.shape
    phi = math.radians(angle_deg if angle_deg is not None else 0.0)
    e = np.array([math.cos(phi), math.sin(phi)])
    # The front starts on the border it leaves from: u = 0 at the frame's extreme point along -e.
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float)
    proj = corners @ e
    u0, span = proj.min(), proj.max() - proj.min()
    k = _rate(k_px, span, n, t_span, travel)
    front = np.minimum(_fluctuating(time_s, k=k, n=n, x0=0.0, t0=t0, fluctuation=fluct, rng=rng), 0.95 * span)
    a1 = rng.uniform(0, np.pi)
    g1 = np.array([math.cos(a1), math.sin(a1)]) / period
    g2 = np.array([math.cos(a1 + np.pi / 2.4), math.sin(a1 + np.pi / 2.4)]) / (period * 1.15)
    T = len(time_s)
    ideal = np.empty((T, H, W))
    masks = np.empty((T, H, W), np.uint8)
    for i in range(T):
        dy, dx = drift[i]
        X, Y = xx - dx, yy - dy
        u = X * e[0] + Y * e[1] - u0
        f = _soft_step(u - front[i], max(w, 1.0))
        # Reacted part expanded: displacement along e grows behind the front, continuous at it.
        disp = -expansion * (front[i] - u) * f
        Xs, Ys = X - disp * e[0], Y - disp * e[1]
        lat = np.cos(2 * np.pi * (g1[0] * Xs + g1[1] * Ys)) + np.cos(2 * np.pi * (g2[0] * Xs + g2[1] * Ys))
        ideal[i] = (1 + 0.5 * c * f) * (1 + 0.3 * lat)
        masks[i] = np.where(u < front[i], 2, 1)
    axis = np.array([[0.0, 0.0], [0.0, 0.0]])
    start = np.array([W / 2, H / 2]) - ((np.array([W / 2, H / 2]) @ e) - u0) * e
    axis = np.array([start, start + span * e])
    extra = dict(k_px=k, angle_deg=math.degrees(phi), lattice_period_px=period, lattice_expansion=expansion,
                 g_vectors_per_px=[g1[::-1].tolist(), g2[::-1].tolist()])
    return ideal, masks, front, axis, extra
