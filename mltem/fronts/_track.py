"""Front trackers: classical (kymograph + step detection, or GPA strain for lattice
images) and network (U-Net segmentation through ONNX), both smoothed with a Kalman filter.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mltem.fronts._geometry import (
    FrontAxis,
    detect_axis,
    foreground_mask,
    measure_drift,
    sample_kymograph,
    specimen_zone,
)
from mltem.fronts._kalman import KalmanTrack, kalman_smooth

__all__ = ["FrontTrack", "front_positions", "track_fronts", "track_fronts_network", "is_lattice_image", "width_kymograph",
           "segment_frames", "refine_with_intensity", "bin_frames", "upsample_linear", "NETWORK_SCALE",
           "METHODS", "MODES", "EDGE_SOURCES"]

log = logging.getLogger(__name__)

METHODS = ("classical", "network")
#: Where :func:`track_fronts_network` reads a particle's surface in frame 0.
EDGE_SOURCES = ("intensity", "network")
MODES = ("auto", "contrast", "lattice")


@dataclass
class FrontTrack:
    """A tracked front.

    Attributes
    ----------
    time_s : numpy.ndarray
        (frame,) times, s.
    measured_px : numpy.ndarray
        (frame,) front position measured in each frame, px from the axis origin.
    position_nm, position_std_nm : numpy.ndarray
        (frame,) Kalman-smoothed position and its standard deviation, nm.
    velocity_nm_s, velocity_std_nm_s : numpy.ndarray
        (frame,) Kalman velocity and its standard deviation, nm/s.
    kymograph : numpy.ndarray
        (frame, M) the profile the front was found in (intensity, dilatation, reacted
        fraction or wire width), column ``j`` at ``j`` px from the origin.
    axis : FrontAxis
    drift_px : numpy.ndarray
        (frame, 2) measured drift ``(dy, dx)``.
    pixel_size_nm : float
    method, mode : str
        ``"classical"``/``"network"``; what the front was found in: ``"contrast"``
        (intensity), ``"lattice"`` (GPA dilatation), ``"mask"`` (network's reacted
        class), ``"swelling"`` (width of the network's material mask) or
        ``"mask+swelling"`` (both, averaged); with ``network_scale > 1`` a ``"+contrast"``
        suffix when the front was refined from the full-resolution intensity (the
        kymograph is still the network's).
    kalman : KalmanTrack
    timings_s : dict
    """

    time_s: np.ndarray
    measured_px: np.ndarray
    position_nm: np.ndarray
    position_std_nm: np.ndarray
    velocity_nm_s: np.ndarray
    velocity_std_nm_s: np.ndarray
    kymograph: np.ndarray
    axis: FrontAxis
    drift_px: np.ndarray
    pixel_size_nm: float
    method: str
    mode: str
    kalman: KalmanTrack
    timings_s: dict = field(default_factory=dict)

    @property
    def measured_nm(self) -> np.ndarray:
        return self.measured_px * self.pixel_size_nm


#: Most re-centrings of the sub-pixel window (:func:`front_positions`); it stops when the
#: position moves by less than 0.01 px. A row without a step (nothing reacted yet) walks
#: down by a window width per re-centring until it reaches 0.
RECENTRE_ITERATIONS = 20


def front_positions(kymograph, *, end=None, levels=None, window_px: int = 6, return_quality: bool = False,
                    guess=None, search_px: int = 6, local_levels: bool = True):
    """Sub-pixel front position in each row of a kymograph whose reacted side is at index 0.

    A two-level step is fitted to every row (least squares over all split points, by
    cumulative sums); the reacted and unreacted levels ``A`` and ``B`` are the medians of
    the per-frame levels over frames where the step lies well inside. The sub-pixel
    position is then the area of the normalised profile ``(p - B) / (A - B)`` over a
    window around the step, which is exact for any symmetric blur of the edge.

    Parameters
    ----------
    kymograph : numpy.ndarray
        (frame, M) profiles, column ``j`` at ``j`` px from the origin.
    end : int or array of int, optional
        Columns at and after ``end`` are ignored (e.g. beyond a wire's tip), per frame or
        for all.
    levels : tuple of float, optional
        Known ``(A, B)``, e.g. ``(1, 0)`` for a reacted-probability kymograph.
    window_px : int
        Half-width of the area window, px.

    return_quality : bool
        Also return the step's contrast-to-noise ratio ``|A - B| / sigma`` (sigma: noise
        of one column, from neighbour differences).
    guess : array_like, optional
        (frame,) approximate positions, px (e.g. from a coarser measurement): the levels are
        read on either side of the guess instead of the best free split, and the step is
        searched only within ``search_px`` of it.
    search_px : int
        With ``guess``: half-width of the search, px.
    local_levels : bool
        Read the two levels of the sub-pixel step next to it in each frame (median over
        +-3 frames) instead of the movie-wide medians, so that levels that drift (a
        swelling shell, thickness changing along the axis) do not bias the position.
        Frames without enough clear columns on a side keep the movie-wide level.

    Returns
    -------
    numpy.ndarray
        (frame,) positions in px (0 = no reacted material); with ``return_quality`` a
        tuple (positions, contrast-to-noise).
    """
    K = np.asarray(kymograph, dtype=np.float64)
    if K.ndim != 2 or K.shape[1] < 4:
        raise ValueError(f"kymograph must be (frame, M >= 4), got shape {K.shape}")
    T, M = K.shape
    ends = np.full(T, M, int) if end is None else np.broadcast_to(np.clip(np.asarray(end, int), 4, M), (T,)).copy()
    E = int(ends.max())
    Kf = np.where(np.isfinite(K), K, np.nanmedian(K) if np.isfinite(K).any() else 0.0)[:, :E]
    col = np.arange(E)
    valid = col[None] < ends[:, None]
    Kv = np.where(valid, Kf, 0.0)
    c1 = np.cumsum(Kv, axis=1)
    c2 = np.cumsum(Kv**2, axis=1)
    cn = np.cumsum(valid, axis=1).astype(float)
    tot1, tot2, totn = c1[:, -1:], c2[:, -1:], cn[:, -1:]
    # split j (1..E-1): left = columns < j
    l1, l2, ln = c1[:, :-1], c2[:, :-1], cn[:, :-1]
    r1, r2, rn = tot1 - l1, tot2 - l2, totn - ln
    with np.errstate(divide="ignore", invalid="ignore"):
        sse = (l2 - l1**2 / ln) + (r2 - r1**2 / rn)
    j_ok = (ln >= 1) & (rn >= 1)
    sse = np.where(j_ok, sse, np.inf)
    j = np.argmin(sse, axis=1) + 1
    if guess is not None:
        g = np.asarray(guess, dtype=np.float64)
        if g.shape != (T,):
            raise ValueError(f"guess must have one position per frame ({T}), got shape {g.shape}")
        if search_px < 1:
            raise ValueError(f"search_px must be >= 1, got {search_px}")
        g = np.where(np.isfinite(g), g, j)
        j = np.minimum(np.clip(np.round(g).astype(int), 1, E - 1), np.maximum(ends - 1, 1))
    rows = np.arange(T)
    # levels away from the blurred edge (3 px clear on each side)
    ja = np.clip(j - 3, 1, E - 1)
    jb = np.clip(j + 3, 1, E - 1)
    a = np.where(j - 3 >= 1, l1[rows, ja - 1] / np.maximum(ln[rows, ja - 1], 1), l1[rows, j - 1] / np.maximum(ln[rows, j - 1], 1))
    b = np.where(j + 3 <= E - 1, r1[rows, jb - 1] / np.maximum(rn[rows, jb - 1], 1), r1[rows, j - 1] / np.maximum(rn[rows, j - 1], 1))
    if levels is None:
        inner_a = j >= 5
        inner_b = (ends - j) >= 5
        A = float(np.median(a[inner_a])) if inner_a.any() else float(np.median(a))
        B = float(np.median(b[inner_b])) if inner_b.any() else float(np.median(b))
    else:
        A, B = (float(v) for v in levels)
    noise = float(np.median(np.abs(np.diff(Kf, axis=1)))) / 0.6745 / np.sqrt(2) + 1e-12
    cnr = abs(A - B) / noise
    if abs(A - B) < 1e-12:
        return (np.zeros(T), 0.0) if return_quality else np.zeros(T)
    # Coarse position with the levels fixed: the reacted part is contiguous from index 0,
    # so the best split (0 = nothing reacted) minimises sum_{s<j} (p-A)^2 + sum_{s>=j} (p-B)^2.
    d = np.where(valid, (Kf - A) ** 2 - (Kf - B) ** 2, 0.0)
    cost = np.concatenate([np.zeros((T, 1)), np.cumsum(d, axis=1)], axis=1)
    cost = np.where(np.arange(E + 1)[None] <= ends[:, None], cost, np.inf)
    if guess is not None:
        near = np.abs(np.arange(E + 1)[None] - j[:, None]) <= search_px
        cost = np.where(near, cost, np.inf)
    j = np.argmin(cost, axis=1)
    if levels is None and local_levels:
        At, Bt = _local_levels(Kf, j, ends, A, B, width=2 * window_px)
    else:
        At, Bt = np.full(T, A), np.full(T, B)
    pos = np.empty(T)
    for t in range(T):
        x = float(j[t])
        q = np.clip((Kf[t] - Bt[t]) / (At[t] - Bt[t]), -0.5, 1.5)
        for _ in range(RECENTRE_ITERATIONS):  # re-centre the window on the refined position
            lo = max(0, int(round(x)) - window_px)
            hi = min(int(ends[t]), int(round(x)) + window_px)
            if hi <= lo:
                break
            x_new = min(max(lo + float(q[lo:hi].sum()) - (0.5 if hi < ends[t] else 0.0), 0.0), float(ends[t]))
            done = abs(x_new - x) < 0.01
            x = x_new
            if done:
                break
        pos[t] = x
    if return_quality:
        return pos, cnr
    return pos


def _local_levels(K, j, ends, A, B, *, width: int, clear: int = 3, min_cols: int = 3, half_frames: int = 3):
    """Per-frame levels either side of the step at ``j``, smoothed over frames (see
    :func:`front_positions`); movie-wide ``A``/``B`` where a side has too few columns."""
    T = K.shape[0]
    a = np.full(T, np.nan)
    b = np.full(T, np.nan)
    for t in range(T):
        lo, hi = max(0, j[t] - clear - width), j[t] - clear
        if hi - lo >= min_cols:
            a[t] = np.mean(K[t, lo:hi])
        lo, hi = j[t] + clear, min(int(ends[t]), j[t] + clear + width)
        if hi - lo >= min_cols:
            b[t] = np.mean(K[t, lo:hi])

    def smooth(v, fill):
        out = np.empty(T)
        for t in range(T):
            w = v[max(0, t - half_frames) : t + half_frames + 1]
            w = w[np.isfinite(w)]
            out[t] = np.median(w) if len(w) else fill
        return out

    At, Bt = smooth(a, A), smooth(b, B)
    # a level pair that lost the step's sign or most of its contrast is noise: movie-wide
    weak = (np.sign(At - Bt) != np.sign(A - B)) | (np.abs(At - Bt) < 0.3 * abs(A - B))
    At[weak], Bt[weak] = A, B
    return At, Bt


def is_lattice_image(image, *, threshold: float = 50.0) -> bool:
    """Whether an image shows resolved lattice fringes (sharp strong spots in its spectrum).

    Above 1/16 px^-1, the strongest Fourier component must be a sharp spot (``threshold``
    times stronger than the spectrum at 0.75 and 1.33 times its frequency in the same
    direction; edges and textures fall off smoothly instead), and the 32 strongest
    components must hold at least 15 % of that power (a periodic lattice concentrates it).

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) frame.
    threshold : float
        Sharpness the strongest spot must exceed.

    Returns
    -------
    bool
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be (y, x), got shape {img.shape}")
    H, W = img.shape
    img = img - img.mean()
    win = np.hanning(H)[:, None] * np.hanning(W)[None]
    P = np.abs(np.fft.fft2(img * win)) ** 2
    ky = np.fft.fftfreq(H)[:, None]
    kx = np.fft.fftfreq(W)[None]
    hf = np.hypot(ky, kx) > 1 / 16
    if not hf.any() or not P[hf].sum() > 0:
        return False
    Ph = np.where(hf, P, 0.0)
    iy, ix = np.unravel_index(int(np.argmax(Ph)), P.shape)
    k0 = np.array([ky[iy, 0], kx[0, ix]])

    def power_at(f):
        q = k0 * f
        return P[int(round(q[0] * H)) % H, int(round(q[1] * W)) % W]

    sharp = Ph[iy, ix] / max(power_at(0.75), power_at(1.33), 1e-12)
    share = np.sort(P[hf])[::-1][:32].sum() / P[hf].sum()
    return bool(sharp > threshold and share >= 0.15)


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3:
        raise ValueError(f"frames must be (frame, y, x), got shape {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"front tracking needs at least 2 frames, got {len(frames)}")
    if min(frames.shape[1:]) < 16:
        raise ValueError(f"frames must be at least 16 x 16 px, got {frames.shape[1:]}")
    frames = frames.astype(np.float32, copy=False)
    if not np.isfinite(frames).all():
        med = np.nanmedian(frames)
        frames = np.where(np.isfinite(frames), frames, med if np.isfinite(med) else 0.0).astype(np.float32)
    return frames


def _times(n, frame_time_s, time_s):
    if time_s is not None:
        t = np.asarray(time_s, float)
        if t.shape != (n,) or np.any(np.diff(t) <= 0):
            raise ValueError(f"time_s must be {n} strictly increasing times")
        return t
    if not frame_time_s > 0:
        raise ValueError(f"frame_time_s must be > 0, got {frame_time_s}")
    return np.arange(n) * float(frame_time_s)


def _search_end(K, axis: FrontAxis, ref_profile) -> np.ndarray:
    """Per-frame last column to search: before a wire's tip (material ends), else all."""
    T, M = K.shape
    if axis.geometry != "wire":
        return np.full(T, M)
    mat = getattr(axis, "_material", None)
    L = M if mat is None else int(mat[1] - mat[0])
    margin = int(round(1.5 * axis.radius_px)) + 3
    return np.full(T, int(np.clip(L - margin, 4, M)))


def _finish(time_s, measured, K, axis, drift, pixel_size_nm, method, mode, timings) -> FrontTrack:
    t = time.perf_counter()
    kal = kalman_smooth(time_s, measured * pixel_size_nm)
    # before the first and after the last measured frame the smoother only extrapolates
    # its motion model: no estimate there (NaN), rather than a confident-looking guess
    fin = np.nonzero(np.isfinite(measured))[0]
    outside = np.ones(len(measured), bool)
    outside[fin[0] : fin[-1] + 1] = False
    for name in ("position", "position_std", "velocity", "velocity_std"):
        getattr(kal, name)[outside] = np.nan
    timings["kalman"] = time.perf_counter() - t
    return FrontTrack(
        time_s=time_s, measured_px=measured, position_nm=kal.position, position_std_nm=kal.position_std,
        velocity_nm_s=kal.velocity, velocity_std_nm_s=kal.velocity_std, kymograph=K.astype(np.float32),
        axis=axis, drift_px=drift, pixel_size_nm=float(pixel_size_nm), method=method, mode=mode, kalman=kal,
        timings_s=timings,
    )


def _material_limits(axis: FrontAxis, mask: np.ndarray):
    """Record where the material lies along a user-given axis (for the search end)."""
    if axis.geometry != "wire" or hasattr(axis, "_material"):
        return
    H, W = mask.shape
    ix = np.clip(np.round(axis.points[:, 0]).astype(int), 0, W - 1)
    iy = np.clip(np.round(axis.points[:, 1]).astype(int), 0, H - 1)
    on = np.nonzero(mask[iy, ix])[0]
    axis._material = (0.0, float(on[-1]) if len(on) else float(len(axis.points) - 1))  # type: ignore[attr-defined]


def track_fronts(
    frames,
    *,
    pixel_size_nm: float = 1.0,
    frame_time_s: float = 1.0,
    time_s=None,
    geometry: str = "auto",
    axis: FrontAxis | None = None,
    mode: str = "auto",
) -> FrontTrack:
    """Classical front tracker.

    Steps: drift of every frame against frame 0 (cross-correlation); the wire axis or
    particle outline from frame 0 and its change by the last frame (which also tells the
    contact end); a kymograph along the axis (band mean) or radius (azimuthal mean;
    particles are flat-fielded by frame 0); the front in every row by
    :func:`front_positions`; a Kalman smoother for the uncertainty. Lattice images
    (``mode="lattice"``, or ``"auto"`` when fringes are resolved) use the dilatation
    ``exx + eyy`` of :func:`mltem.gpa.gpa_stack` instead of the intensity.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) movie.
    pixel_size_nm : float
        nm per px.
    frame_time_s : float
        s per frame (ignored if ``time_s`` is given).
    time_s : array_like, optional
        (frame,) times, s.
    geometry : {"auto", "wire", "core-shell", "planar"}
    axis : FrontAxis, optional
        Override the detected axis (e.g. :func:`axis_from_points`); its first point is
        the origin of the position.
    mode : {"auto", "contrast", "lattice"}

    Returns
    -------
    FrontTrack
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    frames = _check_frames(frames)
    ts = _times(len(frames), frame_time_s, time_s)
    timings: dict = {}
    t = time.perf_counter()
    if mode == "auto":
        mode = "lattice" if is_lattice_image(frames[0]) else "contrast"
    if mode == "lattice":
        return _track_lattice(frames, ts, pixel_size_nm, geometry, axis, timings)
    ref = frames[0]
    material = foreground_mask(ref)
    drift = measure_drift(frames, ref, ignore=specimen_zone(material))
    timings["drift"] = time.perf_counter() - t
    t = time.perf_counter()
    if axis is None:
        mid = len(frames) // 2
        late = _aligned(frames[mid], drift[mid])
        axis = detect_axis(ref, frames_late=late, geometry=geometry, mask=material)
    else:
        _material_limits(axis, material)
    timings["geometry"] = time.perf_counter() - t
    t = time.perf_counter()
    K = sample_kymograph(frames, axis, shifts=drift)
    if axis.geometry in ("core-shell", "planar"):
        from scipy.ndimage import gaussian_filter1d

        K = K / np.maximum(gaussian_filter1d(K[0], 1.0), 1e-6)[None]
    end = _search_end(K, axis, K[0])
    measured, cnr = _front_in_time(K, end)
    if axis.geometry == "wire":
        # the reacted part also swells: the band just outside the wire changes from
        # background to material; use whichever signal shows the clearer step
        r = axis.radius_px
        K2 = sample_kymograph(frames, axis, shifts=drift, band=(0.8 * r, 1.5 * r))
        m2, cnr2 = _front_in_time(K2, end)
        if cnr2 > cnr:
            K, measured = K2, m2
    timings["fronts"] = time.perf_counter() - t
    return _finish(ts, measured, K, axis, drift, pixel_size_nm, "classical", "contrast", timings)


#: Time smoothing (frames, Gaussian sigma) of the kymograph for the coarse front, and the
#: half-width (px) of the per-frame search around it.
COARSE_SIGMA_FRAMES = 1.5
COARSE_SEARCH_PX = 4


def _front_in_time(K, end):
    """Front in every row of ``K``: the coarse step from the kymograph smoothed over a few
    frames (a front moves little between frames; noise and texture do not persist), then
    the sub-pixel step in each frame within ``COARSE_SEARCH_PX`` of it. Returns
    (positions, contrast-to-noise of the single-frame step)."""
    from scipy.ndimage import gaussian_filter1d

    if len(K) < 5:
        return front_positions(K, end=end, return_quality=True)
    coarse = front_positions(gaussian_filter1d(K, COARSE_SIGMA_FRAMES, axis=0, mode="nearest"), end=end)
    return front_positions(K, end=end, return_quality=True, guess=coarse, search_px=COARSE_SEARCH_PX)


def _aligned(frame, shift):
    from scipy import ndimage

    return ndimage.shift(frame, (-shift[0], -shift[1]), order=1, mode="nearest")


def _track_lattice(frames, ts, pixel_size_nm, geometry, axis, timings):
    """Front from GPA's dilatation (see :mod:`mltem.fronts._lattice`)."""
    from mltem.fronts._geometry import _normals, _resample_polyline
    from mltem.fronts._lattice import lattice_fronts

    if geometry not in ("auto", "planar"):
        raise ValueError(f"the lattice mode tracks planar fronts across the field, not geometry={geometry!r}")
    t = time.perf_counter()
    if axis is None:
        lf = lattice_fronts(frames)
    else:
        d = axis.points[-1] - axis.points[0]
        lf = lattice_fronts(frames, origin=axis.points[0], direction=d, half_width_px=axis.half_width_px)
    timings["gpa_fronts"] = time.perf_counter() - t
    if axis is None:
        H, W = frames.shape[1:]
        M = lf.kymograph.shape[1]
        pts = _resample_polyline(np.array([lf.origin_xy, lf.origin_xy + (M - 1) * lf.direction_xy]))
        axis = FrontAxis("planar", pts, _normals(pts), 0.5 * min(H, W) - lf.margin_px,
                         (float((W - 1) / 2), float((H - 1) / 2)), 0.5 * (M - 1))
    return _finish(ts, lf.measured_px, lf.kymograph, axis, lf.drift_px, pixel_size_nm, "classical", "lattice", timings)


def _pad_to(x, m):
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")
    return x


#: Default factor by which frames are binned before the network. 1: full resolution (the
#: scale the network was trained at); 2: 4x fewer pixels, the forward pass about 4x faster,
#: the probabilities interpolated back and the front refined from the full-resolution
#: intensity (see benchmarks/README_fronts.md for the accuracy cost).
NETWORK_SCALE = 1


def bin_frames(frames, scale: int) -> np.ndarray:
    """Average ``scale`` x ``scale`` pixel blocks (edge pixels repeated to a whole block).

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x).
    scale : int
        Binning factor >= 1.

    Returns
    -------
    numpy.ndarray
        (frame, ceil(y / scale), ceil(x / scale)) float32.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    scale = int(scale)
    if scale == 1:
        return frames
    n, h, w = frames.shape
    ph, pw = (-h) % scale, (-w) % scale
    if ph or pw:
        frames = np.pad(frames, [(0, 0), (0, ph), (0, pw)], mode="edge")
    b = frames.reshape(n, (h + ph) // scale, scale, (w + pw) // scale, scale)
    return b.mean(axis=(2, 4), dtype=np.float32)


def _linear_weights(n_out: int, n_in: int, scale: int):
    # output pixel j's centre lies at (j + 0.5) / scale - 0.5 in binned pixel coordinates
    u = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) / scale - 0.5, 0, n_in - 1)
    i0 = np.minimum(np.floor(u).astype(np.intp), max(n_in - 2, 0))
    w = (u - i0).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), w


def upsample_linear(x, scale: int, shape) -> np.ndarray:
    """Bilinear interpolation of binned maps back to full resolution (inverse of :func:`bin_frames`'s grid).

    Parameters
    ----------
    x : numpy.ndarray
        (..., y, x) maps on the binned grid.
    scale : int
        Binning factor used by :func:`bin_frames`.
    shape : tuple of int
        (y, x) full-resolution size to return.

    Returns
    -------
    numpy.ndarray
        (..., shape[0], shape[1]) float32; values at the edges are held constant.
    """
    x = np.asarray(x, dtype=np.float32)
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    H, W = (int(v) for v in shape)
    if scale == 1:
        return x[..., :H, :W]
    a0, a1, wy = _linear_weights(H, x.shape[-2], int(scale))
    b0, b1, wx = _linear_weights(W, x.shape[-1], int(scale))
    rows = x[..., a0, :] + (x[..., a1, :] - x[..., a0, :]) * wy[:, None]
    return rows[..., b0] + (rows[..., b1] - rows[..., b0]) * wx


def segment_frames(frames, *, model="fronts-unet", batch_size: int = 4, network_scale: int = NETWORK_SCALE):
    """Class probabilities (background, unreacted, reacted) of every frame with the ONNX U-Net.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x); frame 0 is the reference the network compares with.
    model : str or ModelCard
        Registry name or card of a ``fronts`` model.
    batch_size : int
        Frames per onnxruntime call.
    network_scale : int
        The network runs on frames binned ``network_scale`` x ``network_scale``
        (:func:`bin_frames`) and its probabilities are interpolated back to the full frame
        (:func:`upsample_linear`). 1 (default): full resolution; 2: about 4x faster.

    Returns
    -------
    numpy.ndarray
        (frame, 3, y, x) float32 probabilities at full resolution.
    """
    from mltem.fronts._netinput import network_input
    from mltem.infer import OnnxModel

    frames = _check_frames(frames)
    if int(network_scale) != network_scale or network_scale < 1:
        raise ValueError(f"network_scale must be an integer >= 1, got {network_scale}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    scale = int(network_scale)
    m = OnnxModel(model, task="fronts")
    mult = int(m.card.extra.get("multiple", 8)) if isinstance(m.card.extra, dict) else 8
    H, W = frames.shape[1:]
    small = bin_frames(frames, scale)
    h, w = small.shape[1:]
    if min(h, w) < mult:
        raise ValueError(f"frames of {H} x {W} px are too small for network_scale {scale}")
    out = np.empty((len(frames), 3, H, W), np.float32)
    for i in range(0, len(frames), batch_size):
        x = _pad_to(network_input(small[i : i + batch_size], small[0]), mult)
        logits = m(x)[:, :, :h, :w]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        e /= e.sum(axis=1, keepdims=True)
        # probabilities (not logits) are interpolated: they stay in 0..1 and sum to 1
        out[i : i + batch_size] = upsample_linear(e, scale, (H, W))
    return out


def track_fronts_network(
    frames,
    *,
    pixel_size_nm: float = 1.0,
    frame_time_s: float = 1.0,
    time_s=None,
    geometry: str = "auto",
    axis: FrontAxis | None = None,
    model="fronts-unet",
    probabilities=None,
    network_scale: int = NETWORK_SCALE,
    refine: bool | None = None,
    edge_from: str = "intensity",
) -> FrontTrack:
    """Network front tracker: U-Net segmentation (ONNX), front from the mask, Kalman smoothing.

    The material mask of frame 0 gives the axis (as in :func:`track_fronts`); the
    reacted fraction ``P(reacted) / (P(reacted) + P(unreacted))`` is sampled along it,
    and the front is the area under that profile near its step (levels 1 and 0). For
    wires, the width of the material mask along the axis (the reacted part swells) gives
    a second front; the two are combined when both are valid, and the swelling front
    alone is used when the network does not see the reacted class (e.g. where the
    reacted material's brighter contrast cancels its larger thickness).

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x).
    pixel_size_nm, frame_time_s, time_s, geometry, axis
        As for :func:`track_fronts`.
    model : str or ModelCard
        The ``fronts`` model.
    probabilities : numpy.ndarray, optional
        (frame, 3, y, x) precomputed :func:`segment_frames` output.
    network_scale : int
        Binning of the frames before the network (:func:`segment_frames`); 1 (default) runs it
        at full resolution, 2 about 4x faster (less accurate on planar fronts).
    refine : bool, optional
        Refine the network's front at full resolution from the intensity kymograph along
        the same axis (:func:`refine_with_intensity`); default: when ``network_scale > 1``.
    edge_from : {"intensity", "network"}
        Where a particle's surface (the origin of core-shell depths and of planar positions)
        is read in frame 0: the steepest point of the intensity's azimuthal profile
        (default), or the half-way crossing of the network's material probability. On
        frame 0 the shipped network draws the outline about 1 px too large where the
        surface layer is darker (not in later frames), so every later depth reads about
        1 px deeper than frame 0's and the exponent reads low (see
        benchmarks/README_fronts.md).

    Returns
    -------
    FrontTrack
    """
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    if edge_from not in EDGE_SOURCES:
        raise ValueError(f"edge_from must be one of {EDGE_SOURCES}, got {edge_from!r}")
    frames = _check_frames(frames)
    ts = _times(len(frames), frame_time_s, time_s)
    timings: dict = {}
    t = time.perf_counter()
    prob = segment_frames(frames, model=model, network_scale=network_scale) if probabilities is None else np.asarray(probabilities, np.float32)
    timings["network"] = time.perf_counter() - t
    t = time.perf_counter()
    material0 = prob[0, 0] < 0.5
    drift = measure_drift(frames, frames[0], ignore=specimen_zone(material0))
    timings["drift"] = time.perf_counter() - t
    t = time.perf_counter()
    mid = len(frames) // 2
    mat_late = _aligned(1 - prob[mid, 0] + prob[mid, 2], drift[mid])
    if axis is None:
        from scipy import ndimage

        mask = material0
        lab, nlab = ndimage.label(mask)
        if nlab > 1:
            sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, nlab + 1))
            mask = lab == 1 + int(np.argmax(sizes))
        if mask.sum() < 30:
            mask = foreground_mask(frames[0])
        edge = dict(edge="gradient", edge_image=frames[0]) if edge_from == "intensity" else dict(edge="halfway")
        axis = detect_axis(1 - prob[0, 0] + prob[0, 2], frames_late=mat_late, geometry=geometry,
                           mask=ndimage.binary_fill_holes(mask), **edge)
    else:
        _material_limits(axis, material0)
    timings["geometry"] = time.perf_counter() - t
    t = time.perf_counter()
    reacted = prob[:, 2] / np.maximum(prob[:, 1] + prob[:, 2], 1e-6)
    K = sample_kymograph(reacted, axis, shifts=drift)
    end = _search_end(K, axis, K[0])
    measured = front_positions(K, end=end, levels=(1.0, 0.0))
    mode = "mask"
    if axis.geometry == "wire":
        measured, K, mode = _with_swelling(measured, K, 1 - prob[:, 0], axis, drift, end)
    if network_scale > 1 if refine is None else refine:
        measured, refined = refine_with_intensity(frames, measured, axis, shifts=drift, end=end)
        if refined:
            mode += "+contrast"
    timings["fronts"] = time.perf_counter() - t
    return _finish(ts, measured, K, axis, drift, pixel_size_nm, "network", mode, timings)


#: Reacted-class level behind the front below which the network's reacted class is not trusted.
MIN_REACTED_LEVEL = 0.8
#: Contrast-to-noise ratio of the width step below which the swelling signal is not trusted.
MIN_SWELLING_CNR = 8.0


def reacted_level(K, measured, *, min_share: float = 0.25) -> float:
    """Median reacted fraction well behind the front (>= 3 px) in frames where it has moved.

    ``nan`` when the front lies more than 8 px from the origin in fewer than ``min_share``
    of the frames (at least 3): a reacted class seen in a few frames only (a partial,
    patchy class on a wire whose contrast and thickness changes cancel) does not show
    that the network sees the front.
    """
    vals = []
    for t in range(len(K)):
        j = int(round(measured[t]))
        if j > 8:
            vals.append(float(np.mean(K[t, max(0, j - 15) : j - 3])))
    if len(vals) < max(3, min_share * len(K)):
        return float("nan")
    return float(np.median(vals))


def width_kymograph(material, axis: FrontAxis, *, shifts=None, reach: float | None = None) -> np.ndarray:
    """Local width of a wire (px) along its axis in every frame, from a material probability.

    Parameters
    ----------
    material : numpy.ndarray
        (frame, y, x) probability (or fraction) of material, 0..1.
    axis : FrontAxis
        Wire axis.
    shifts : numpy.ndarray, optional
        (frame, 2) drift ``(dy, dx)``.
    reach : float, optional
        Half-width of the band summed across the axis, px; default twice the wire radius
        (room for swelling up to 100 %).

    Returns
    -------
    numpy.ndarray
        (frame, M) float32 width in px.
    """
    import copy

    reach = 2.0 * axis.radius_px if reach is None else float(reach)
    if not reach > 0:
        raise ValueError(f"reach must be > 0, got {reach}")
    band = copy.copy(axis)
    band.half_width_px = max(1.0, round(reach))
    n = max(3, int(round(2 * band.half_width_px)) + 1)
    return sample_kymograph(material, band, shifts=shifts) * np.float32(n)


def _with_swelling(measured, K, material, axis, drift, end):
    """Combine the reacted-class front with the swelling front from the material mask's width.

    A wire swells behind the front: its width gained since frame 0 steps down at the
    front. The network's material class (background vs
    material) is far more reliable than its reacted class when the contrast change and the
    thickness change cancel. Each signal is used if it is valid (reacted level behind the
    front >= :data:`MIN_REACTED_LEVEL`; width step contrast-to-noise >= :data:`MIN_SWELLING_CNR`);
    with both, positions are averaged with inverse-variance weights (noise from second
    differences, :func:`measurement_noise`).
    """
    from mltem.fronts._kalman import measurement_noise

    Kw = width_kymograph(material, axis, shifts=drift)
    # swelling = width gained since frame 0: what does not change (the wire leaving the
    # frame, tapering, neighbours) cancels
    Kw = Kw - Kw[:1]
    pw, cnr_w = front_positions(Kw, end=end, return_quality=True)
    ok_r = reacted_level(K, measured) >= MIN_REACTED_LEVEL
    ok_w = cnr_w >= MIN_SWELLING_CNR
    log.info("network front: reacted class %s, swelling (width CNR %.1f) %s", "valid" if ok_r else "not valid",
             cnr_w, "valid" if ok_w else "not valid")
    if ok_w and not ok_r:
        return pw, Kw, "swelling"
    if ok_r and ok_w:
        wr, ww = measurement_noise(measured) ** -2, measurement_noise(pw) ** -2
        return (wr * measured + ww * pw) / (wr + ww), K, "mask+swelling"
    return measured, K, "mask"


#: Half-width (px) of the full-resolution search around the network's front.
REFINE_SEARCH_PX = 6
#: Contrast-to-noise ratio of the intensity step below which the network's front is kept.
MIN_REFINE_CNR = 4.0


def refine_with_intensity(frames, coarse, axis: FrontAxis, *, shifts=None, end=None,
                          search_px: int = REFINE_SEARCH_PX, min_cnr: float = MIN_REFINE_CNR):
    """Refine approximate front positions from the full-resolution intensity near them.

    The approximate track is median-filtered over 5 frames (an isolated wrong frame does
    not move the search), then :func:`front_positions` looks for the intensity step within
    ``search_px`` of it in the kymograph along ``axis`` (band mean; particles flat-fielded
    by frame 0 as in :func:`track_fronts`; for wires also the band just outside the wire,
    which the swelling fills, whichever shows the clearer step).

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) movie at full resolution.
    coarse : numpy.ndarray
        (frame,) approximate positions, px from the axis origin.
    axis : FrontAxis
    shifts : numpy.ndarray, optional
        (frame, 2) drift ``(dy, dx)``, px.
    end : int or array of int, optional
        As for :func:`front_positions`.
    search_px : int
        Half-width of the search around the (filtered) approximate position, px.
    min_cnr : float
        Keep ``coarse`` when no intensity step reaches this contrast-to-noise ratio.

    Returns
    -------
    tuple
        ((frame,) positions in px, whether the intensity refinement was used).
    """
    from scipy.ndimage import gaussian_filter1d, median_filter

    frames = _check_frames(frames)
    coarse = np.asarray(coarse, dtype=np.float64)
    if coarse.shape != (len(frames),):
        raise ValueError(f"coarse must have one position per frame ({len(frames)}), got shape {coarse.shape}")
    guess = median_filter(coarse, size=min(5, len(coarse)), mode="nearest") if np.isfinite(coarse).all() else coarse
    K = sample_kymograph(frames, axis, shifts=shifts)
    if axis.geometry in ("core-shell", "planar"):
        K = K / np.maximum(gaussian_filter1d(K[0], 1.0), 1e-6)[None]
    kymos = [K]
    if axis.geometry == "wire":
        r = axis.radius_px
        kymos.append(sample_kymograph(frames, axis, shifts=shifts, band=(0.8 * r, 1.5 * r)))
    best, best_cnr = None, -1.0
    for Kc in kymos:
        pos, cnr = front_positions(Kc, end=end, guess=guess, search_px=search_px, return_quality=True)
        if cnr > best_cnr:
            best, best_cnr = pos, cnr
    log.info("network front refined at full resolution: intensity step CNR %.1f%s", best_cnr,
             "" if best_cnr >= min_cnr else " (too weak: network front kept)")
    if best_cnr < min_cnr:
        return coarse, False
    return best, True
