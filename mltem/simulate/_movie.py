"""Synthetic in-situ TEM movies of lithium plating with exact per-pixel labels.

Two cell geometries:

``"liquid"``
    A liquid cell seen in bright field: an electrode (dark, thick) whose edge runs across
    the frame, an electrolyte of varying thickness (bulging SiN windows with a grainy
    texture), an SEI layer growing along the electrode (parabolic growth that saturates,
    ``S(t) = S0 + (Smax - S0) sqrt(1 - exp(-t / tau))``), lithium deposits (globules)
    and branched dendrites growing from the electrode that later dissolve from the root
    and leave detached "dead lithium", and gas bubbles that nucleate and grow.
``"open"``
    An open cell (vacuum, thin carbon support): a nanowire (electrode) touching a lithium
    source; a lithiation front runs along the wire, which swells behind it and grows a
    Li2O shell (labelled as SEI, at least 3 px thick so that it is resolvable) grows on
    the lithiated part; lithium whiskers grow from the wire surface.

Image formation: projected mass-thickness ``m`` per pixel, transmitted intensity
``exp(-m)``, Fresnel fringes at edges (a Laplacian-of-Gaussian term of ``m`` whose sign
and size follow the defocus), defocus blur, a slowly varying illumination gradient,
frame-to-frame flicker, specimen drift (sub-pixel, labels drift with it), low-dose
Poisson noise and camera artefacts (fixed-pattern gain, column banding, hot pixels,
cosmic-ray spikes, read noise).

Classes: 0 electrolyte/background (vacuum in the open cell), 1 electrode, 2 SEI (Li2O
in the open cell), 3 lithium, 4 bubble.

Everything is vectorised with numpy/scipy.ndimage: a 256 x 256 frame takes a few
milliseconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import lfilter

from mltem._physics import check_detector

__all__ = ["CLASSES", "SyntheticMovie", "sei_time_law", "simulate_movie"]

CLASSES = ("electrolyte", "electrode", "SEI", "lithium", "bubble")
_BG, _ELECTRODE, _SEI, _LI, _BUBBLE = range(5)
_MIN_SHELL_PX = 3.0  # thinnest Li2O shell in the open cell, px (thinner is not resolvable)
_SHELL_LAG_PX = 10.0  # the shell starts this far behind the lithiation front, px


@dataclass
class SyntheticMovie:
    """A simulated movie, its exact labels and the ground truth per frame.

    Attributes
    ----------
    frames : numpy.ndarray
        (frame, y, x) float32, detector counts.
    masks : numpy.ndarray
        (frame, y, x) uint8 class per pixel, see :data:`CLASSES`.
    sei_thickness_nm : numpy.ndarray
        (frame,) mean SEI thickness along the visible electrode surface, nm (NaN where
        there is no SEI).
    lithium_area_nm2 : numpy.ndarray
        (frame,) area of class 3 (lithium), nm^2.
    dendrite_count : numpy.ndarray
        (frame,) dendrites the frame shows leaving the electrode, whose trunk is at least
        4 root radii long (see ``_dendrite_truth``).
    longest_dendrite_nm : numpy.ndarray
        (frame,) longest of their trunks (from the electrode surface to the tip, or to
        the frame edge), nm; 0 if none.
    dendrite_tips : list of numpy.ndarray
        Per frame, (k, 2) positions (y, x) in pixels of the trunk tips of the attached
        dendrites (where a trunk leaves the frame, its last point in the frame).
    pixel_size_nm : float
    frame_time_s : float
    kind : str
        ``"liquid"`` or ``"open"``.
    params : dict
        Every setting used (including the ones drawn at random), for reproducibility.
    dendrite_lengths_nm : list of dict
        Per frame, {dendrite number: trunk length, nm, measured as for
        ``longest_dendrite_nm``} of the dendrites counted in ``dendrite_count`` (the same
        order as ``dendrite_tips``); a dendrite keeps its number over the movie, so the
        change of its length over time is its true tip growth velocity.
    """

    frames: np.ndarray
    masks: np.ndarray
    sei_thickness_nm: np.ndarray
    lithium_area_nm2: np.ndarray
    dendrite_count: np.ndarray
    longest_dendrite_nm: np.ndarray
    dendrite_tips: list
    pixel_size_nm: float
    frame_time_s: float
    kind: str
    params: dict = field(default_factory=dict)
    dendrite_lengths_nm: list = field(default_factory=list)

    @property
    def time_s(self) -> np.ndarray:
        """(frame,) acquisition time of each frame, s."""
        return np.arange(len(self.frames)) * self.frame_time_s

    def truth(self) -> dict:
        """The per-frame ground truth as a dict of arrays (and the tips list)."""
        return {
            "time_s": self.time_s,
            "sei_thickness_nm": self.sei_thickness_nm,
            "lithium_area_nm2": self.lithium_area_nm2,
            "dendrite_count": self.dendrite_count,
            "longest_dendrite_nm": self.longest_dendrite_nm,
            "dendrite_tips": self.dendrite_tips,
            "dendrite_lengths_nm": self.dendrite_lengths_nm,
        }


def sei_time_law(time_s, *, sei0_nm: float, sei_max_nm: float, tau_s: float) -> np.ndarray:
    """SEI thickness vs time: parabolic at first, saturating at ``sei_max_nm``.

    ``S(t) = S0 + (Smax - S0) * sqrt(1 - exp(-t / tau))``; for ``t << tau`` this is the
    diffusion-limited parabolic law ``S - S0 ~ sqrt(t)``.

    Parameters
    ----------
    time_s : array_like
        Times, s (>= 0).
    sei0_nm, sei_max_nm : float
        Thickness at t = 0 and the plateau, nm.
    tau_s : float
        Time constant, s (> 0).

    Returns
    -------
    numpy.ndarray
        Thickness, nm.
    """
    if tau_s <= 0:
        raise ValueError(f"tau_s must be > 0, got {tau_s}")
    t = np.maximum(np.asarray(time_s, dtype=float), 0.0)
    return sei0_nm + (sei_max_nm - sei0_nm) * np.sqrt(1.0 - np.exp(-t / tau_s))


# --------------------------------------------------------------------------- helpers
def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float32)."""
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return f / max(float(f.std()), 1e-6)


def _profile_1d(rng, n: int, *, wavelengths, amplitude: float) -> tuple:
    """Random smooth 1D function as a sum of sinusoids: returns (amps, freqs, phases)."""
    k = len(wavelengths)
    amps = amplitude * rng.uniform(0.3, 1.0, k) / np.sqrt(k)
    freqs = 2 * np.pi / np.asarray(wavelengths, float)
    phases = rng.uniform(0, 2 * np.pi, k)
    return amps, freqs, phases


def _eval_profile(p, v):
    amps, freqs, phases = p
    out = np.zeros_like(v, dtype=np.float32)
    for a, f, ph in zip(amps, freqs, phases):
        out += np.float32(a) * np.sin(np.float32(f) * v + np.float32(ph))
    return out


@dataclass
class _Dendrite:
    """A branched dendrite as densely sampled nodes in sample coordinates (px)."""

    pts: np.ndarray  # (n, 2) y, x
    birth: np.ndarray  # (n,) frame at which the node appears
    radius: np.ndarray  # (n,) px
    root_arc: np.ndarray  # (n,) path length from the root, px
    trunk: np.ndarray  # (n,) bool: node on the trunk
    t0: float
    t_dissolve: float  # frame at which stripping starts (inf: never)
    strip_speed: float  # px of path removed per frame from the root


def _grow_dendrite(rng, root, angle, *, t0, length, speed, radius, branchiness, step=0.7, t_dissolve=math.inf):
    """Trunk and branches as angle random walks; nodes carry their birth frame."""
    pts, birth, rad, arc, trunk = [], [], [], [], []

    def walk(start, ang0, n, arc0, t_start, r0, is_trunk, level):
        if n < 2:
            return
        # Mean-reverting angle (Ornstein-Uhlenbeck): wiggly but with a growth direction.
        ang = ang0 + lfilter([1.0], [1.0, -0.97], rng.normal(0, 0.07, n))
        d = np.stack([np.sin(ang), np.cos(ang)], 1) * step
        p = start + np.cumsum(d, 0)
        s = arc0 + step * np.arange(1, n + 1)
        b = t_start + step * np.arange(1, n + 1) / speed
        r = np.maximum(r0 * np.clip(1.0 - 0.4 * np.arange(n) / n, 0.6, 1.0), 1.1)
        pts.append(p)
        birth.append(b)
        rad.append(r)
        arc.append(s)
        trunk.append(np.full(n, is_trunk))
        if level >= 2:
            return
        n_br = rng.poisson(branchiness * n * step / 40.0)
        for _ in range(n_br):
            j = int(rng.integers(n // 5, max(n // 5 + 1, n - 5)))
            side = rng.choice([-1.0, 1.0])
            ba = ang[j] + side * rng.uniform(0.5, 1.0)
            bn = int(rng.uniform(0.2, 0.6) * (n - j))
            walk(p[j], ba, bn, s[j], b[j], r[j] * rng.uniform(0.7, 0.9), False, level + 1)

    n = max(2, int(length / step))
    walk(np.asarray(root, float), angle, n, 0.0, t0, radius, True, 0)
    return _Dendrite(
        pts=np.concatenate(pts).astype(np.float32),
        birth=np.concatenate(birth),
        radius=np.concatenate(rad).astype(np.float32),
        root_arc=np.concatenate(arc),
        trunk=np.concatenate(trunk),
        t0=t0,
        t_dissolve=t_dissolve,
        strip_speed=float(rng.uniform(1.0, 3.0) * speed),
    )


def _dendrite_state(d: _Dendrite, t: float):
    """Visible nodes at frame ``t``: born, not yet stripped; radius shrinks when stripping."""
    vis = d.birth <= min(t, d.t_dissolve)
    r = d.radius
    attached = True
    if t > d.t_dissolve:
        dt = t - d.t_dissolve
        vis &= d.root_arc > dt * d.strip_speed
        # Thinning, but never below 1 px radius (a 3 px wide thread): thinner fragments
        # are invisible at any dose and must not be labelled lithium.
        r = np.maximum(r * np.float32(max(0.35, 1.0 - 0.08 * dt)), np.float32(1.0))
        attached = False
    return vis, r, attached


def _render_disks(shape, pts, radius, pad: int) -> np.ndarray:
    """Union of disks centred on ``pts`` (y, x, px) with per-point radii, as a bool mask.

    The points are rasterised onto a padded grid and the mask is the set of pixels whose
    nearest point (exact Euclidean distance transform) lies within that point's radius.
    """
    h, w = shape
    H, W = h + 2 * pad, w + 2 * pad
    if len(pts) == 0:
        return np.zeros(shape, bool)
    iy = np.rint(pts[:, 0]).astype(np.int64) + pad
    ix = np.rint(pts[:, 1]).astype(np.int64) + pad
    ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    if not ok.any():
        return np.zeros(shape, bool)
    iy, ix, rr = iy[ok], ix[ok], radius[ok]
    rmap = np.zeros((H, W), np.float32)
    np.maximum.at(rmap, (iy, ix), rr)
    seed = rmap > 0
    dist, (ny, nx) = ndi.distance_transform_edt(~seed, return_indices=True)
    m = dist <= rmap[ny, nx]
    return m[pad : pad + h, pad : pad + w]


# ------------------------------------------------------------------ the simulator
def simulate_movie(
    n_frames: int = 16,
    shape: tuple = (256, 256),
    *,
    kind: str = "liquid",
    seed: int | None = None,
    pixel_size_nm: float = 5.0,
    frame_time_s: float = 0.5,
    dose: float = 40.0,
    sei_max_nm: float | None = None,
    sei_tau_s: float | None = None,
    n_dendrites: int | None = None,
    n_deposits: int | None = None,
    n_bubbles: int | None = None,
    drift_px: float = 0.3,
    electrode_fraction: float | None = None,
    edge_angle_deg: float | None = None,
    noise: bool = True,
    dark_lithium_probability: float = 0.15,
    contrast: dict | None = None,
    electrode_edge: dict | None = None,
    detector: str = "bf",
) -> SyntheticMovie:
    """Simulate a labelled in-situ TEM movie of lithium plating.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 1).
    shape : tuple of int
        Frame size (y, x) in pixels, each >= 16.
    kind : {"liquid", "open"}
        Liquid cell (electrode, electrolyte, SEI, lithium, bubbles) or open cell
        (nanowire touching lithium, Li2O shell, whiskers; no bubbles).
    seed : int, optional
        Seed of every random choice; the same seed gives the same movie.
    pixel_size_nm : float
        Pixel size, nm/px. Sizes drawn at random (SEI plateau, dendrite width) are drawn
        in pixels, so the movie looks alike at any calibration.
    frame_time_s : float
        Time between frames, s.
    dose : float
        Mean electrons per pixel per frame in the electrolyte (Poisson noise).
    sei_max_nm : float, optional
        Plateau of the SEI thickness, nm (default: 10-50 px).
    sei_tau_s : float, optional
        Time constant of the SEI growth, s (default: 0.2-1.5 x the movie's duration).
    n_dendrites, n_deposits, n_bubbles : int, optional
        Numbers of branched dendrites, globular lithium deposits and bubbles
        (defaults drawn at random; bubbles are 0 in the open cell).
    drift_px : float
        Standard deviation of the specimen drift per frame, px (a random walk plus a
        constant velocity of the same order).
    electrode_fraction : float, optional
        Share of the frame covered by the electrode (liquid cell, default 0.15-0.4).
    edge_angle_deg : float, optional
        Direction of the electrode's outward normal (liquid) or the wire axis (open),
        degrees from +x (default: random).
    noise : bool
        Apply Poisson noise and camera artefacts; False gives the noise-free intensity
        scaled to ``dose``.
    dark_lithium_probability : float
        Chance (0-1) that the lithium of a liquid-cell movie is denser than the
        electrolyte (dark) rather than lighter (bright); training sets may raise it to
        show the network more of the rarer contrast.
    contrast : dict, optional
        Mass-thickness settings that replace the ones drawn at random (keys of
        ``params["contrast"]``: e.g. ``electrolyte``, ``electrode``, ``sei`` for the
        liquid cell, ``wire``, ``lithiated``, ``li2o`` for the open cell). Every other
        random choice stays as it would be without them, so a training set can
        over-sample a rare contrast (an electrode edge no denser than its SEI) without
        changing anything else of the movie.
    electrode_edge : dict, optional
        Liquid cell: the electrode's thickness profile at its edge, replacing the drawn
        one (as ``contrast``, nothing else changes). ``ramp_px`` (>= 0): the distance
        over which the electrode reaches its full mass-thickness (drawn: 3-15 px; 0: a
        step); ``floor`` (0-1): the share of it at the edge (default 0.35). A
        lithographically patterned film electrode has a step edge; the drawn wedge is a
        thinning film or a particle.
    detector : {"bf", "haadf"}
        ``"bf"``: bright-field TEM, the transmitted intensity ``exp(-m)`` with Fresnel
        fringes at edges (denser is darker). ``"haadf"``: annular dark-field STEM, the
        signal proportional to the mass-thickness ``m`` itself, incoherent (no fringes),
        blurred by the probe (denser is brighter: a bright electrode and SEI, lithium
        and bubbles darker than the electrolyte); ``dose`` is then the mean count of the
        first frame. Every random choice is the same for both, so the same seed gives
        the same scene and masks.

    Returns
    -------
    SyntheticMovie
        Frames (float32 counts), masks (uint8), per-frame truth and calibration.

    Examples
    --------
    >>> m = simulate_movie(4, (64, 64), seed=0)
    >>> m.frames.shape, m.masks.dtype
    ((4, 64, 64), dtype('uint8'))
    """
    if kind not in ("liquid", "open"):
        raise ValueError(f"kind must be 'liquid' or 'open', got {kind!r}")
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be (y, x) with both >= 16 px, got {shape!r}")
    if not pixel_size_nm > 0 or not frame_time_s > 0:
        raise ValueError(f"pixel_size_nm and frame_time_s must be > 0, got {pixel_size_nm}, {frame_time_s}")
    if not dose > 0:
        raise ValueError(f"dose must be > 0 electrons/px, got {dose}")
    if not 0 <= dark_lithium_probability <= 1:
        raise ValueError(f"dark_lithium_probability must be in [0, 1], got {dark_lithium_probability}")
    check_detector(detector)
    rng = np.random.default_rng(seed)
    h, w = int(shape[0]), int(shape[1])
    T = int(n_frames)
    duration = T * frame_time_s
    params = {"kind": kind, "seed": seed, "shape": [h, w], "n_frames": T, "pixel_size_nm": pixel_size_nm,
              "frame_time_s": frame_time_s, "dose": dose, "drift_px": drift_px, "detector": detector}

    # Drift: random walk + constant velocity, sub-pixel, in px (applied to sample coords).
    vel = rng.normal(0, drift_px, 2)
    steps = rng.normal(0, drift_px, (T, 2)) + vel
    steps[0] = 0
    drift = np.cumsum(steps, 0).astype(np.float32)
    drift -= drift.mean(0)
    margin = int(np.ceil(np.abs(drift).max())) + 4

    # SEI time law (px); a random start time so movies begin at different growth stages.
    sei_max_px = sei_max_nm / pixel_size_nm if sei_max_nm is not None else rng.uniform(10, 50)
    tau = sei_tau_s if sei_tau_s is not None else rng.uniform(0.2, 1.5) * duration
    sei0_px = rng.uniform(0.0, 0.25) * sei_max_px
    t_start = rng.uniform(0.0, 0.3) * duration
    times = t_start + np.arange(T) * frame_time_s
    sei_px_t = sei_time_law(times, sei0_nm=sei0_px, sei_max_nm=sei_max_px, tau_s=tau)
    params.update(sei_max_nm=float(sei_max_px * pixel_size_nm), sei_tau_s=float(tau), sei0_nm=float(sei0_px * pixel_size_nm),
                  t_start_s=float(t_start))

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture_shape = (h + 2 * margin, w + 2 * margin)
    ang = math.radians(edge_angle_deg) if edge_angle_deg is not None else rng.uniform(0, 2 * math.pi)
    params["edge_angle_deg"] = math.degrees(ang) % 360
    if kind == "liquid":
        geo = _LiquidGeometry(rng, h, w, T, ang, sei_px_t, electrode_fraction, n_dendrites, n_deposits, n_bubbles)
        edge = {"ramp_px": float(geo.edge_ramp), "floor": float(geo.edge_floor)}
        if electrode_edge:  # overlaid on the drawn profile, as ``contrast``
            unknown = sorted(set(electrode_edge) - set(edge))
            if unknown:
                raise ValueError(f"unknown electrode_edge key(s) {', '.join(unknown)}; known: {', '.join(edge)}")
            edge.update({k: float(v) for k, v in electrode_edge.items()})
            if not (np.isfinite(edge["ramp_px"]) and edge["ramp_px"] >= 0):
                raise ValueError(f"electrode_edge ramp_px must be finite and >= 0, got {edge['ramp_px']}")
            if not (np.isfinite(edge["floor"]) and 0 <= edge["floor"] <= 1):
                raise ValueError(f"electrode_edge floor must be in [0, 1], got {edge['floor']}")
            geo.edge_ramp, geo.edge_floor = edge["ramp_px"], edge["floor"]
        params["electrode_edge"] = edge
    else:
        if electrode_edge:
            raise ValueError("electrode_edge applies to the liquid cell only (the open cell's wire is a cylinder)")
        geo = _OpenGeometry(rng, h, w, T, ang, sei_px_t, n_dendrites)

    # Contrast parameters (mass-thickness, arbitrary units: transmission = exp(-m)).
    win_tex = _smooth_noise(rng, texture_shape, rng.uniform(0.8, 2.5)) * rng.uniform(0.01, 0.04)
    sei_tex = _smooth_noise(rng, texture_shape, rng.uniform(0.7, 1.5))
    fresnel = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 1.5)
    fresnel_sigma = rng.uniform(0.8, 2.0)
    blur = rng.uniform(0.4, 1.4)
    grad = rng.normal(0, 0.12, 2)
    grad_rate = rng.normal(0, 0.01, 2)
    flicker = 1 + rng.normal(0, 0.03, T)
    vign = rng.uniform(0, 0.25)
    params.update(fresnel=float(fresnel), blur_px=float(blur))
    drawn = geo.contrast(rng, dark_lithium_probability)
    if contrast:
        unknown = sorted(set(contrast) - set(drawn))
        if unknown:
            raise ValueError(f"unknown contrast key(s) {', '.join(unknown)} for the {kind} cell; known: {', '.join(drawn)}")
        bad = {k: v for k, v in contrast.items() if not (np.isfinite(v) and (v >= 0 or k == "lithium"))}
        if bad:
            raise ValueError(f"contrast values must be finite and >= 0 (lithium may be negative), got {bad}")
        drawn.update({k: float(v) for k, v in contrast.items()})
        if kind == "liquid" and "electrolyte" in contrast and "bg_transmission" not in contrast:
            drawn["bg_transmission"] = math.exp(-drawn["electrolyte"])
    contrast = drawn
    params["contrast"] = {k: float(v) for k, v in contrast.items()}

    # Camera (fixed across frames).
    gain = (1 + rng.normal(0, rng.uniform(0.005, 0.03), (h, w))).astype(np.float32)
    gain *= (1 + rng.normal(0, rng.uniform(0.0, 0.02), w)).astype(np.float32)[None, :]
    hot = rng.random((h, w)) < rng.uniform(0, 2e-4)
    read_noise = rng.uniform(0.0, 1.5)
    counts_per_e = rng.uniform(0.5, 4.0)

    frames = np.empty((T, h, w), np.float32)
    masks = np.empty((T, h, w), np.uint8)
    sei_nm = np.full(T, np.nan)
    area = np.zeros(T)
    dcount = np.zeros(T, np.int64)
    dlong = np.zeros(T)
    tips, lengths = [], []
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    for t in range(T):
        dy, dx = float(drift[t, 0]), float(drift[t, 1])
        Y, X = yy + np.float32(dy), xx + np.float32(dx)
        oy, ox = margin + int(round(dy)), margin + int(round(dx))
        crop = (slice(oy, oy + h), slice(ox, ox + w))
        labels, m, info = geo.frame(t, Y, X, contrast, sei_tex[crop])
        m = m + contrast["window"] * (1 + win_tex[crop])
        illum = 1 + (grad[0] + grad_rate[0] * t) * (yy / h - 0.5) + (grad[1] + grad_rate[1] * t) * (xx / w - 0.5)
        illum = illum * (1 - vign * r2) * flicker[t]
        if detector == "haadf":  # incoherent: the mass-thickness blurred by the probe
            inten = ndi.gaussian_filter(m, blur)
            if t == 0:
                m_ref = max(float(np.mean(inten)), 1e-3)
            inten = np.clip(inten * illum, 0, None) * np.float32(dose / m_ref)
        else:  # Fresnel fringes at edges, then the transmitted intensity and defocus blur
            inten = np.exp(-m) * (1 - np.float32(fresnel) * ndi.gaussian_laplace(m, fresnel_sigma))
            inten = ndi.gaussian_filter(inten, blur)
            inten = np.clip(inten * illum, 0, None) * np.float32(dose / contrast["bg_transmission"])
        if noise:
            counts = rng.poisson(inten).astype(np.float32) * np.float32(counts_per_e)
            counts = counts * gain
            if read_noise > 0:
                counts += rng.normal(0, read_noise, (h, w)).astype(np.float32)
            counts[hot] += 20 * dose * counts_per_e
            n_spikes = rng.poisson(0.5)
            if n_spikes:
                sy, sx = rng.integers(0, h, n_spikes), rng.integers(0, w, n_spikes)
                counts[sy, sx] += rng.uniform(5, 20, n_spikes) * dose * counts_per_e
            frames[t] = counts
        else:
            frames[t] = inten
        masks[t] = labels
        area[t] = np.count_nonzero(labels == _LI) * pixel_size_nm**2
        if info["sei_px"] is not None:
            sei_nm[t] = info["sei_px"] * pixel_size_nm
        dcount[t] = len(info["tips"])
        dlong[t] = max(info["lengths_px"].values(), default=0.0) * pixel_size_nm
        tips.append(np.asarray(info["tips"], np.float32).reshape(-1, 2))
        lengths.append({k: L * pixel_size_nm for k, L in info["lengths_px"].items()})
    params.update(geo.params)
    return SyntheticMovie(frames, masks, sei_nm, area, dcount, dlong, tips, float(pixel_size_nm), float(frame_time_s),
                          kind, params, lengths)


def _dendrite_frame(dendrites, t, drift_y, drift_x):
    """Lithium points and radii at frame t, and the trunks of the attached dendrites.

    Each trunk is (dendrite number, its visible nodes (y, x) in frame pixels ordered from
    the root, their path lengths from the root in px, the root radius).
    """
    pts, rad, trunks = [], [], []
    shift = np.array([drift_y, drift_x], np.float32)
    for k, d in enumerate(dendrites):
        vis, r, attached = _dendrite_state(d, t)
        if not vis.any():
            continue
        pts.append(d.pts[vis] - shift)
        rad.append(r[vis])
        tr = vis & d.trunk
        if attached and tr.any():
            j = np.flatnonzero(tr)
            j = j[np.argsort(d.root_arc[j])]
            trunks.append((k, d.pts[j] - shift, d.root_arc[j], float(d.radius[0])))
    if pts:
        return np.concatenate(pts), np.concatenate(rad), trunks
    return np.zeros((0, 2), np.float32), np.zeros(0, np.float32), trunks


def _dendrite_truth(trunks, electrode: np.ndarray, hidden: np.ndarray | None = None):
    """Visible trunk ends and lengths (px) of the dendrites seen attached in this frame.

    A dendrite counts when the frame shows its trunk leaving the electrode (the first
    trunk node in the frame outside the electrode follows a node in the frame on it)
    and the trunk from there on, as far as it stays in the frame, is at least 4 root
    radii long. Its length runs from the electrode surface (half a node step before the
    first node outside) to its tip, or to where it leaves the frame (its end is then
    the last node in the frame: the part an image of this frame shows). A dendrite that
    enters the frame already off the electrode, is still buried in a swollen electrode,
    or runs through ``hidden`` (lithium of the same contrast, e.g. the open cell's
    lithium source) is not counted: no image of this frame shows it as a dendrite.
    """
    h, w = electrode.shape
    tips, lengths = [], {}
    for k, p, arc, r0 in trunks:
        yi, xi = np.round(p[:, 0]).astype(int), np.round(p[:, 1]).astype(int)
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        in_el = np.zeros(len(p), bool)
        in_el[inside] = electrode[yi[inside], xi[inside]]
        off = np.flatnonzero(inside & ~in_el)
        if off.size == 0:
            continue
        e = int(off[0])
        a = max(e - 1, 0)  # the node on the electrode before it (the root itself if e = 0)
        # the root sits 1 px inside the surface: allow for the rounding to a pixel
        if not (inside[a] and electrode[max(yi[a] - 1, 0) : yi[a] + 2, max(xi[a] - 1, 0) : xi[a] + 2].any()):
            continue
        end = e + int(np.argmin(inside[e:])) - 1 if not inside[e:].all() else len(p) - 1
        if hidden is not None and hidden[yi[e : end + 1], xi[e : end + 1]].any():
            continue
        start = (arc[e] + arc[e - 1]) / 2 if e else arc[0]
        L = float(arc[end] - start)
        if L >= 4 * r0:
            tips.append(p[end])
            lengths[k] = L
    return tips, lengths


class _LiquidGeometry:
    """Electrode half-plane with a wavy edge, SEI band, dendrites, deposits, bubbles."""

    def __init__(self, rng, h, w, T, ang, sei_px_t, electrode_fraction, n_dendrites, n_deposits, n_bubbles):
        self.h, self.w, self.T = h, w, T
        self.n = np.array([math.sin(ang), math.cos(ang)], np.float32)  # outward normal (y, x)
        self.tvec = np.array([self.n[1], -self.n[0]], np.float32)  # along the edge
        cy, cx = h / 2, w / 2
        corners = np.array([[0, 0], [0, w], [h, 0], [h, w]], np.float32) - [cy, cx]
        u = corners @ self.n
        frac = electrode_fraction if electrode_fraction is not None else rng.uniform(0.15, 0.4)
        self.u0 = float(u.min() + frac * (u.max() - u.min()))  # edge position (u, px)
        self.c = np.array([cy, cx], np.float32)
        L = float(np.hypot(h, w))
        self.edge = _profile_1d(rng, 3, wavelengths=rng.uniform(0.6, 2.0, 3) * L, amplitude=rng.uniform(0, 0.04) * L)
        self.sei_var = _profile_1d(rng, 3, wavelengths=rng.uniform(0.2, 0.8, 3) * L, amplitude=rng.uniform(0.0, 0.35))
        self.sei_px_t = sei_px_t
        self.edge_ramp = rng.uniform(3, 15)
        self.edge_floor = 0.35
        # Lithium: dendrites rooted on the edge; v (along-edge) positions inside the frame.
        v_span = corners @ self.tvec
        v_lo, v_hi = float(v_span.min()), float(v_span.max())
        nd = n_dendrites if n_dendrites is not None else int(rng.integers(0, 5))
        ng = n_deposits if n_deposits is not None else int(rng.integers(0, 4))
        nb = n_bubbles if n_bubbles is not None else int(rng.integers(0, 4))
        span_u = float(u.max()) - self.u0
        self.dendrites = []
        for _ in range(nd):
            v = rng.uniform(v_lo + 0.1 * (v_hi - v_lo), v_hi - 0.1 * (v_hi - v_lo))
            ue = self.u0 + float(_eval_profile(self.edge, np.float32(v)))
            root = self.c + ue * self.n + v * self.tvec - 1.0 * self.n
            t0 = rng.uniform(-0.3, 0.7) * T
            length = rng.uniform(0.3, 0.9) * span_u
            speed = length / max(T - t0, 1.0) * rng.uniform(0.8, 1.6)
            diss = rng.uniform(0.5, 1.0) * T if rng.random() < 0.35 else math.inf
            angle = math.atan2(self.n[0], self.n[1]) + rng.normal(0, 0.35)
            self.dendrites.append(_grow_dendrite(rng, root, angle, t0=t0, length=length, speed=speed,
                                                 radius=rng.uniform(1.8, 4.5), branchiness=rng.uniform(0, 2.0),
                                                 t_dissolve=diss))
        self.deposits = []
        for _ in range(ng):
            v = rng.uniform(v_lo, v_hi)
            self.deposits.append((v, rng.uniform(-0.3, 0.6) * T, rng.uniform(4, 18), rng.uniform(0.3, 1.0) * T))
        self.bubbles = []
        for _ in range(nb):
            uu = rng.uniform(self.u0 + 0.3 * span_u, float(u.max()))
            vv = rng.uniform(v_lo, v_hi)
            self.bubbles.append((self.c + uu * self.n + vv * self.tvec, rng.uniform(-0.2, 0.8) * T, rng.uniform(6, 40),
                                 rng.uniform(0.2, 1.0) * T))
        # Liquid thickness: bulging windows (thicker in the middle of the cell).
        self.bulge = (rng.uniform(-0.5, 0.5, 2) * [h, w], rng.uniform(0.0, 0.6), rng.uniform(0.8, 2.0) * L)
        self.params = {"electrode_fraction": float(frac), "n_dendrites": nd, "n_deposits": ng, "n_bubbles": nb}

    def contrast(self, rng, dark_p):
        e = rng.uniform(0.35, 1.0)
        li = rng.uniform(0.2, 0.6) if rng.random() < 1.0 - dark_p else -rng.uniform(0.2, 0.45)
        return {
            "electrolyte": e,
            "electrode": rng.uniform(1.0, 2.5),
            "sei": rng.uniform(0.2, 0.6),  # extra mass-thickness relative to electrolyte
            "sei_texture": rng.uniform(0.02, 0.12),
            "lithium": li,  # fraction of electrolyte mass-thickness displaced
            "bubble": rng.uniform(0.5, 0.95),
            "window": rng.uniform(0.1, 0.3),
            "bg_transmission": math.exp(-e),
        }

    def frame(self, t, Y, X, c, sei_tex):
        h, w = self.h, self.w
        dyx = np.array([float(Y[0, 0]), float(X[0, 0])], np.float32)  # the drift (pixel (0, 0) sees it)
        Yc, Xc = Y - self.c[0], X - self.c[1]
        u = Yc * self.n[0] + Xc * self.n[1]
        v = Yc * self.tvec[0] + Xc * self.tvec[1]
        du = u - (self.u0 + _eval_profile(self.edge, v))  # signed distance from the edge, px
        electrode = du < 0
        sei_local = np.float32(self.sei_px_t[t]) * (1 + _eval_profile(self.sei_var, v))
        sei = (~electrode) & (du < sei_local)
        labels = np.zeros((h, w), np.uint8)
        # Liquid thickness and mass-thickness of the electrolyte.
        (by, bx), bamp, bR = self.bulge
        liq = 1 + bamp * (1 - ((Y - h / 2 - by) ** 2 + (X - w / 2 - bx) ** 2) / bR**2)
        liq = np.clip(liq, 0.4, None).astype(np.float32)
        m = np.float32(c["electrolyte"]) * liq
        # Bubbles (gas displaces liquid; spherical-cap profile).
        for centre, tb, rmax, tau in self.bubbles:
            if t < tb:
                continue
            r = rmax * math.sqrt(1 - math.exp(-(t - tb + 0.5) / tau))
            d2 = (Y - centre[0]) ** 2 + (X - centre[1]) ** 2
            inside = d2 < r * r
            if inside.any():
                cap = np.sqrt(np.clip(1 - d2 / (r * r), 0, 1))
                fill = np.minimum(1.0, 0.35 + 1.5 * cap) * np.float32(c["bubble"])
                m = np.where(inside, m * (1 - fill), m)
                labels[inside] = _BUBBLE
        # SEI: denser than the electrolyte, granular.
        m = np.where(sei, m * (1 + np.float32(c["sei"]) * (1 + np.float32(c["sei_texture"]) * sei_tex)), m)
        labels[sei] = _SEI
        # Electrode: thickness ramps up from the edge.
        ramp = np.clip(-du / self.edge_ramp, 0, 1) if self.edge_ramp > 0 else np.float32(1)
        f = np.float32(self.edge_floor)
        m = np.where(electrode, m + np.float32(c["electrode"]) * (f + (1 - f) * ramp), m)
        labels[electrode] = _ELECTRODE
        # Lithium: dendrites and globular deposits (displace electrolyte; outside the electrode).
        pts, rad, trunks = _dendrite_frame(self.dendrites, t, float(dyx[0]), float(dyx[1]))
        tips, lengths = _dendrite_truth(trunks, electrode)
        gp, gr = [], []
        for v0, tg, rmax, tau in self.deposits:
            if t < tg:
                continue
            r = rmax * math.sqrt(1 - math.exp(-(t - tg + 0.5) / tau))
            ue = self.u0 + float(_eval_profile(self.edge, np.float32(v0)))
            p = self.c + (ue + 0.5 * r) * self.n + v0 * self.tvec - dyx
            gp.append(p)
            gr.append(r)
        if gp:
            pts = np.concatenate([pts, np.asarray(gp, np.float32)])
            rad = np.concatenate([rad, np.asarray(gr, np.float32)])
        pad = int(max(rad.max() if len(rad) else 1, 1)) + 2
        li = _render_disks((h, w), pts, rad, pad) & ~electrode
        if li.any():
            m = np.where(li, m * (1 - np.float32(c["lithium"])), m)
            labels[li] = _LI
        # Truth: SEI thickness along the visible edge (pixels on the electrode boundary).
        edge_px = electrode & ~ndi.binary_erosion(electrode, border_value=1)
        sei_px = float(np.mean(sei_local[edge_px])) if edge_px.any() and self.sei_px_t[t] > 0 else None
        return labels, m, {"sei_px": sei_px, "tips": tips, "lengths_px": lengths}


class _OpenGeometry:
    """Nanowire (electrode) touching a lithium source; lithiation front; Li2O shell."""

    def __init__(self, rng, h, w, T, ang, sei_px_t, n_dendrites):
        self.h, self.w, self.T = h, w, T
        self.a = np.array([math.sin(ang), math.cos(ang)], np.float32)  # wire axis (y, x)
        self.r = np.array([self.a[1], -self.a[0]], np.float32)
        self.c = np.array([h / 2, w / 2], np.float32) + rng.uniform(-0.2, 0.2, 2).astype(np.float32) * [h, w]
        corners = np.array([[0, 0], [0, w], [h, 0], [h, w]], np.float32) - self.c
        s = corners @ self.a
        self.s_lo, self.s_hi = float(s.min()), float(s.max())
        self.w0 = rng.uniform(8, 30)  # pristine wire width, px
        self.swell = rng.uniform(0.2, 0.8)
        self.li_r = rng.uniform(0.15, 0.35) * min(h, w)  # lithium source radius
        self.li_centre = self.c + (self.s_lo + 0.3 * self.li_r) * self.a
        L = self.s_hi - self.s_lo
        self.front0 = self.s_lo + rng.uniform(0.05, 0.2) * L
        self.front_k = rng.uniform(0.3, 0.9) * L / math.sqrt(T)
        # Li2O shell: a resolvable native layer (>= _MIN_SHELL_PX) plus growth with the
        # SEI law. A sub-pixel shell has no contrast at these pixel sizes and could not be
        # labelled or measured by anyone.
        self.sei_px_t = _MIN_SHELL_PX + sei_px_t * rng.uniform(0.2, 0.5)
        nd = n_dendrites if n_dendrites is not None else int(rng.integers(0, 3))
        self.dendrites = []
        for _ in range(nd):
            sa = rng.uniform(self.s_lo + 0.2 * L, self.s_lo + 0.6 * L)
            side = rng.choice([-1.0, 1.0])
            root = self.c + sa * self.a + side * (self.w0 / 2 - 1) * self.r
            t0 = rng.uniform(0.0, 0.6) * T
            length = rng.uniform(0.15, 0.4) * min(h, w)
            speed = length / max(T - t0, 1.0) * rng.uniform(0.8, 1.4)
            angle = math.atan2(side * self.r[0], side * self.r[1]) + rng.normal(0, 0.3)
            self.dendrites.append(_grow_dendrite(rng, root, angle, t0=t0, length=length, speed=speed,
                                                 radius=rng.uniform(1.8, 3.5), branchiness=rng.uniform(0, 1.0)))
        self.params = {"wire_width_px": float(self.w0), "n_dendrites": nd, "n_deposits": 0, "n_bubbles": 0}

    def contrast(self, rng, dark_p):  # noqa: ARG002 (lithium is always lighter in vacuum)
        return {
            "electrolyte": 0.0,
            "carbon": rng.uniform(0.05, 0.2),
            "wire": rng.uniform(1.0, 2.5),
            "lithiated": rng.uniform(0.5, 0.8),
            "li2o": rng.uniform(0.6, 1.0),  # Li2O (2.0 g/cm3) is ~4x denser than Li (0.53)
            "lithium": rng.uniform(0.15, 0.35),
            "window": 0.0,
            "bg_transmission": 1.0,
        }

    def frame(self, t, Y, X, c, sei_tex):
        h, w = self.h, self.w
        dyx = np.array([float(Y[0, 0]), float(X[0, 0])], np.float32)  # the drift (pixel (0, 0) sees it)
        Yc, Xc = Y - self.c[0], X - self.c[1]
        s = Yc * self.a[0] + Xc * self.a[1]
        r = np.abs(Yc * self.r[0] + Xc * self.r[1])
        front = self.front0 + self.front_k * math.sqrt(t + 1)
        lith = 1 / (1 + np.exp(-(front - s) / 2.0))  # 1 behind the front
        half = self.w0 / 2 * (1 + self.swell * lith)
        wire = r < half
        shell_t = np.float32(self.sei_px_t[t])
        # The shell forms behind the swelling zone (the wire radius is constant there), so
        # its thickness is one well-defined number.
        grown = s < front - _SHELL_LAG_PX
        shell = (~wire) & (r < half + shell_t) & grown
        d2 = (Y - self.li_centre[0]) ** 2 + (X - self.li_centre[1]) ** 2
        source = d2 < self.li_r**2
        labels = np.zeros((h, w), np.uint8)
        m = np.float32(c["carbon"]) * (1 + 0.3 * sei_tex)
        cyl = np.sqrt(np.clip(1 - (r / half) ** 2, 0, 1))
        m = np.where(shell, m + np.float32(c["li2o"]) * 0.6, m)
        labels[shell] = _SEI
        mw = np.float32(c["wire"]) * (1 - (1 - np.float32(c["lithiated"])) * lith) * (0.3 + 0.7 * cyl)
        m = np.where(wire, m + mw, m)
        labels[wire] = _ELECTRODE
        sph = np.sqrt(np.clip(1 - d2 / self.li_r**2, 0, 1))
        m = np.where(source & ~wire, m + np.float32(c["lithium"]) * (0.4 + 0.6 * sph), m)
        labels[source & ~wire] = _LI
        pts, rad, trunks = _dendrite_frame(self.dendrites, t, float(dyx[0]), float(dyx[1]))
        tips, lengths = _dendrite_truth(trunks, wire, hidden=source)
        pad = int(max(rad.max() if len(rad) else 1, 1)) + 2
        li = _render_disks((h, w), pts, rad, pad) & ~wire
        if li.any():
            m = np.where(li, m + np.float32(c["lithium"]) * 0.7, m)
            labels[li] = _LI
        edge_px = wire & ~ndi.binary_erosion(wire, border_value=1) & grown & ~source
        sei_px = float(shell_t) if shell_t > 0 and edge_px.any() else None
        return labels, m, {"sei_px": sei_px, "tips": tips, "lengths_px": lengths}
