"""Measurements from class masks, calibrated in nm and s (numpy/scipy/scikit-image).

Classes: 0 electrolyte/background, 1 electrode, 2 SEI, 3 lithium, 4 bubble.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from mltem.segment._morph import bounding_box, dilate_square, grow_box

__all__ = [
    "METRIC_COLUMNS",
    "DENDRITE_COLUMNS",
    "TRACK_COLUMNS",
    "Dendrite",
    "FrameMeasurement",
    "sei_thickness_samples",
    "skeleton_length",
    "path_length",
    "find_dendrites",
    "measure_frame",
    "measure_movie",
    "dendrite_tracks",
    "running_median",
]

ELECTROLYTE, ELECTRODE, SEI, LITHIUM, BUBBLE = range(5)
_S8 = np.ones((3, 3), bool)
#: Largest gap, px, between the electrode and lithium counted as attached to it.
ATTACH_PX = 2

METRIC_COLUMNS = [
    "frame", "time_s", "sei_thickness_nm", "sei_thickness_smoothed_nm", "sei_thickness_std_nm", "sei_thickness_p10_nm",
    "sei_thickness_p90_nm", "sei_thickness_masks_nm", "sei_thickness_err_nm",
    "lithium_area_nm2", "dendrite_count", "longest_dendrite_nm", "dendrite_skeleton_nm", "tip_velocity_nm_s",
    "dead_lithium_count", "bubble_count", "bubble_area_nm2",
]
DENDRITE_COLUMNS = [
    "frame", "time_s", "track", "root_y_nm", "root_x_nm", "tip_y_nm", "tip_x_nm", "length_nm", "skeleton_nm",
    "tip_velocity_nm_s",
]
TRACK_COLUMNS = [
    "track", "first_frame", "last_frame", "frames", "length_first_nm", "length_last_nm", "length_max_nm",
    "growth_frames", "growth_velocity_nm_s", "growth_velocity_se_nm_s",
]


def _check_mask(mask, ndim=2):
    m = np.asarray(mask)
    if m.ndim != ndim:
        raise ValueError(f"mask must have {ndim} dimensions ({'frame, ' if ndim == 3 else ''}y, x), got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"mask must hold integer classes 0..4, got dtype {m.dtype}")
    return m


def _check_pixel(pixel_size_nm):
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ValueError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")


_NORMAL_SIGMA_PX = 2.0  # Gaussian smoothing of the electrode mask for its surface normal, px
_RAY_STEP_PX = 0.25  # sampling step along a ray, px
_RAY_INNER_PX = 2.0  # a ray starts this far inside the electrode, px


def _electrode_distance(electrode: np.ndarray, where=None) -> np.ndarray:
    """Euclidean distance to the nearest electrode pixel, px, exact at the pixels of
    ``where`` (default: everywhere) and at every electrode pixel.

    The nearest electrode pixel of any pixel lies on the electrode's surface (an
    electrode pixel with an 8-neighbour that is not electrode: that neighbour is nearer
    still), so the exact distance transform runs in the bounding box of the surface and
    of ``where``; elsewhere the distance is a lower bound (the bulk of the electrode
    and the far electrolyte are left out).
    """
    if where is None:
        return ndi.distance_transform_edt(~electrode)
    dist = np.zeros(electrode.shape)
    box = bounding_box((electrode & dilate_square(~electrode)) | where)
    if box is not None:
        dist[box] = ndi.distance_transform_edt(~electrode[box])
    return dist


def _surface_normals(electrode: np.ndarray, py: np.ndarray, px: np.ndarray):
    """Gradient (y, x) of the electrode mask smoothed with a Gaussian of
    :data:`_NORMAL_SIGMA_PX`, at the pixels (py, px): computed in a window around them
    that holds the filters' reach (the same numbers as over the whole frame)."""
    reach = int(4.0 * _NORMAL_SIGMA_PX + 0.5) + 2  # the Gaussian's radius (truncate 4) and the Sobel's
    win = grow_box((slice(py.min(), py.max() + 1), slice(px.min(), px.max() + 1)), reach, electrode.shape)
    # where the window meets the frame's edge the filters reflect there, as over the frame
    smooth = ndi.gaussian_filter(electrode[win].astype(np.float32), _NORMAL_SIGMA_PX)
    qy, qx = py - win[0].start, px - win[1].start
    return ndi.sobel(smooth, 0)[qy, qx], ndi.sobel(smooth, 1)[qy, qx]


def _first_below(p: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per row, the first index ``>= start`` where ``p < 0.5`` (-1 where there is none)."""
    below = (p < 0.5) & (np.arange(p.shape[1])[None, :] >= start[:, None])
    return np.where(below.any(1), below.argmax(1), -1)


def _crossing(p: np.ndarray, j: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Where each row of ``p`` falls through 0.5 between samples ``j - 1`` and ``j`` (linear)."""
    rows = np.arange(len(j))
    jj = np.clip(j, 1, p.shape[1] - 1)
    a, b = p[rows, jj - 1], p[rows, jj]
    f = np.clip((a - 0.5) / np.maximum(a - b, 1e-6), 0.0, 1.0)
    return r[jj - 1] + f * (r[1] - r[0])


def sei_thickness_samples(mask: np.ndarray, *, pixel_size_nm: float = 1.0, electrode_distance=None) -> np.ndarray:
    """Local SEI thickness along the electrode surface, one sample per surface pixel.

    The thickness is measured along the local normal of the electrode surface, as a
    scientist would draw it: from every electrode pixel next to the SEI (8-adjacent, away
    from the frame border) a ray runs along the outward normal of the electrode
    (the gradient of the electrode mask smoothed with a Gaussian of 2 px). Along the ray
    the electrode and the electrode+SEI indicators are interpolated bilinearly every
    0.25 px; the inner surface is where the electrode indicator falls through 1/2 and
    the outer surface where the electrode+SEI indicator does, both located to sub-pixel
    precision by linear interpolation (for a pixelated boundary: half-way between the
    last pixel centre inside and the first outside). The thickness is their distance.

    A sample counts only if, 1 px beyond the outer surface, the ray is still inside the
    frame and the pixel there is electrolyte or bubble: rays that end in lithium (SEI
    under a deposit or a dendrite root) or leave the frame are dropped. Rays from the
    electrode pixels at the end of a layer that stops (the edge of a shell) run along
    its end face; they are few and removed by the trimmed mean of :func:`measure_movie`.
    On the exact masks of the synthetic movies this matches the generator's thickness
    (mean over the electrode surface of the local thickness along the normal) within a
    few per cent per frame; distances from pixel centres (the Euclidean distance
    transform) read 0.2-0.4 px thin on oblique edges and are fooled by end faces.
    SEI not touching the electrode is ignored.

    Parameters
    ----------
    mask : numpy.ndarray
        (y, x) integer classes.
    pixel_size_nm : float
        nm per pixel.
    electrode_distance : numpy.ndarray, optional
        Each pixel's distance to the electrode, px, if already computed (the Euclidean
        distance transform of the non-electrode pixels; :func:`measure_frame` shares it
        with :func:`find_dendrites`).

    Returns
    -------
    numpy.ndarray
        Thickness samples, nm (empty if there is no electrode or no valid ray; ``[0.]``
        if there is an electrode but no SEI on it).
    """
    m = _check_mask(mask)
    _check_pixel(pixel_size_nm)
    electrode = m == ELECTRODE
    if not electrode.any():
        return np.zeros(0)
    sei = m == SEI
    if sei.any():
        lab, n = ndi.label(sei, _S8)
        touching = np.unique(lab[dilate_square(electrode) & sei])
        sei = np.isin(lab, touching[touching > 0])
    if not sei.any():
        return np.zeros(1)
    h, w = m.shape
    surface = electrode & dilate_square(sei)
    surface[[0, -1], :] = False
    surface[:, [0, -1]] = False
    py, px = np.nonzero(surface)
    if not len(py):
        return np.zeros(0)
    gy, gx = _surface_normals(electrode, py, px)
    norm = np.hypot(gy, gx)
    ok = norm > 1e-6
    py, px = py[ok].astype(np.float32), px[ok].astype(np.float32)
    ny, nx = -gy[ok] / norm[ok], -gx[ok] / norm[ok]
    # The longest ray needed: the farthest attached SEI pixel from the electrode, with room
    # for rays that cross the layer obliquely (curved electrodes); longer rays are dropped.
    dist = _electrode_distance(electrode) if electrode_distance is None else electrode_distance
    reach = 1.5 * float(dist[sei].max()) + 3.0
    r = np.arange(-_RAY_INNER_PX, reach + _RAY_STEP_PX, _RAY_STEP_PX, dtype=np.float32)
    out = np.zeros(0)
    electrode_f, sei_f = electrode.astype(np.float32), sei.astype(np.float32)
    for i in range(0, len(py), 2048):  # bounded memory on large frames
        sl = slice(i, i + 2048)
        Y = py[sl, None] + r[None, :] * ny[sl, None]
        X = px[sl, None] + r[None, :] * nx[sl, None]
        coords = [Y.ravel(), X.ravel()]
        pe = ndi.map_coordinates(electrode_f, coords, order=1, mode="nearest").reshape(Y.shape)
        pes = pe + ndi.map_coordinates(sei_f, coords, order=1, mode="nearest").reshape(Y.shape)
        j_in = _first_below(pe, np.zeros(len(Y), np.int64))
        j_out = _first_below(pes, np.maximum(j_in, 0))
        valid = (j_in > 0) & (j_out > 0)
        thick = _crossing(pes, j_out, r) - _crossing(pe, j_in, r)
        # 1 px beyond the outer surface: inside the frame, and electrolyte or bubble there.
        rows = np.arange(len(Y))
        jq = np.clip(j_out + int(round(1.0 / _RAY_STEP_PX)), 0, len(r) - 1)
        qy = np.rint(Y[rows, jq]).astype(np.int64)
        qx = np.rint(X[rows, jq]).astype(np.int64)
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        beyond = np.full(len(Y), ELECTRODE, m.dtype)
        beyond[inside] = m[qy[inside], qx[inside]]
        valid &= inside & ((beyond == ELECTROLYTE) | (beyond == BUBBLE)) & (thick > 0)
        out = np.concatenate([out, thick[valid].astype(np.float64)])
    return out * pixel_size_nm


def skeleton_length(skel: np.ndarray, *, sigma: float = 2.0) -> float:
    """Length of a one-pixel-wide 8-connected skeleton, px.

    A digital line at angle theta from an image axis (|theta| <= 45 deg) has one pixel
    per step along that axis, so each pixel stands for 1 / max(|cos theta|, |sin theta|)
    px of line; theta is the local direction of the skeleton (the principal axis of its
    pixels within a Gaussian window of ``sigma`` px), and each end gives back half its
    pixel. Lines at any angle come out within about 1 %, where the 1 / sqrt(2) link
    count reads them up to 8 % long; at a junction or a sharp bend the direction is
    mixed, which costs a fraction of a pixel each.
    """
    s = np.asarray(skel, bool)
    if s.ndim != 2:
        raise ValueError(f"skel must be 2D, got shape {s.shape}")
    if np.count_nonzero(s) < 2:
        return 0.0
    f = s.astype(float)
    yy, xx = np.mgrid[: s.shape[0], : s.shape[1]].astype(float)

    def local(a):
        return ndi.gaussian_filter(a, sigma, mode="constant")

    w0 = np.maximum(local(f), 1e-12)
    my, mx = local(f * yy) / w0, local(f * xx) / w0
    cyy = local(f * yy * yy) / w0 - my * my
    cxx = local(f * xx * xx) / w0 - mx * mx
    cxy = local(f * xx * yy) / w0 - mx * my
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    per_pixel = 1.0 / np.maximum(np.abs(np.cos(theta)), np.abs(np.sin(theta)))
    n = ndi.convolve(s.astype(np.uint8), np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8), mode="constant")
    return float(per_pixel[s].sum() - 0.5 * per_pixel[s & (n == 1)].sum())


@dataclass
class Dendrite:
    """One dendrite in one frame (pixel coordinates (y, x); lengths in px)."""

    root: tuple
    tip: tuple
    length_px: float  # root (electrode surface) to tip along the skeleton
    skeleton_px: float  # total skeleton length, branches included
    area_px: int
    path: np.ndarray | None = field(default=None, repr=False, compare=False)  # (n, 2) skeleton pixels, root to tip


def _pixel_graph(coords: np.ndarray):
    """The 8-connected graph of a pixel set (csr matrix; links of length 1 and sqrt(2))."""
    from scipy.sparse import coo_matrix

    n = len(coords)
    key = coords[:, 0].astype(np.int64) * 1_000_003 + coords[:, 1]
    order = np.argsort(key)
    skey = key[order]
    rows, cols, w = [], [], []
    for dy, dx, wt in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, np.sqrt(2)), (1, -1, np.sqrt(2))):
        nk = (coords[:, 0] + dy).astype(np.int64) * 1_000_003 + coords[:, 1] + dx
        pos = np.searchsorted(skey, nk)
        pos = np.minimum(pos, n - 1)
        hit = skey[pos] == nk
        rows.append(np.flatnonzero(hit))
        cols.append(order[pos[hit]])
        w.append(np.full(hit.sum(), wt))
    r, c, ww = np.concatenate(rows), np.concatenate(cols), np.concatenate(w)
    return coo_matrix((ww, (r, c)), shape=(n, n)).tocsr()


def path_length(path: np.ndarray, sigma: float = 1.5) -> float:
    """Length of a pixel path (n, 2), px, after smoothing its staircase.

    The 1 / sqrt(2) step count of an 8-connected path overestimates the length of a
    straight line by up to 8 % (at 22.5 deg); the polyline through the path's points
    smoothed along the path with a Gaussian of ``sigma`` px (the ends held) is within
    about 1 % at every angle, and keeps bends much longer than ``sigma``.
    """
    p = np.asarray(path, float)
    if len(p) < 2:
        return 0.0
    if len(p) > 3:
        q = ndi.gaussian_filter1d(p, sigma, axis=0, mode="nearest")
        # hold the ends: move each smoothed end back onto the path's end pixel, fading out
        wgt = np.clip(1.0 - np.arange(len(p)) / (3.0 * sigma), 0.0, 1.0)[:, None]
        p = q + wgt * (p[0] - q[0]) + wgt[::-1] * (p[-1] - q[-1])
    return float(np.hypot(*np.diff(p, axis=0).T).sum())


def find_dendrites(mask: np.ndarray, *, min_length_px: float = 6.0, aspect: float = 4.0,
                   contact_px: int = ATTACH_PX, electrode_distance=None):
    """Dendrites (elongated lithium attached to the electrode) and dead lithium.

    A lithium component (8-connected) within ``contact_px`` of the electrode is
    attached; lithium that reaches only the SEI is dead lithium (stripped from the
    electrode, it lies on the SEI). An attached component is a dendrite if its
    root-to-tip length is at least ``min_length_px`` and ``aspect`` times its largest
    half-width (so globular deposits are not counted). The root is the skeleton pixel
    closest to the electrode (a dendrite grows from the electrode through the SEI), the
    tip the skeleton pixel farthest from it along the skeleton; the length is that
    path, its pixel staircase smoothed (:func:`path_length`), plus the root's distance
    to the electrode.

    Parameters
    ----------
    mask : numpy.ndarray
        (y, x) integer classes.
    min_length_px : float
    aspect : float
    contact_px : int
        Largest gap, px, between the electrode and attached lithium (a segmentation may
        leave a pixel or two of SEI under a dendrite's root).
    electrode_distance : numpy.ndarray, optional
        See :func:`sei_thickness_samples`.

    Returns
    -------
    dendrites : list of Dendrite
    dead_lithium : int
        Lithium components not attached to the electrode.
    """
    from scipy.sparse.csgraph import dijkstra
    from skimage.morphology import skeletonize

    m = _check_mask(mask)
    li = m == LITHIUM
    if not li.any():
        return [], 0
    electrode = m == ELECTRODE
    lab, n = ndi.label(li, _S8)
    near = dilate_square(electrode, contact_px) if (electrode.any() and contact_px > 0) else electrode
    touching = set(np.unique(lab[near & li]).tolist()) - {0}
    dead = n - len(touching)
    if not touching:
        return [], dead
    dist_el = _electrode_distance(electrode) if electrode_distance is None else electrode_distance
    skel = skeletonize(li)
    out = []
    slices = ndi.find_objects(lab)
    for k in sorted(touching):
        sl = slices[k - 1]
        comp = lab[sl] == k
        sk = skel[sl] & comp
        coords = np.argwhere(sk)
        if len(coords) < 2:
            continue
        half = _half_width(li, sl, comp)
        # a dendrite grows from the electrode through the SEI: its root is where it meets
        # the electrode (inside the SEI band every skeleton pixel is as near the SEI)
        dloc = dist_el[sl][sk]
        start = int(np.argmin(dloc))
        geo, pred = dijkstra(_pixel_graph(coords), directed=False, indices=start, return_predecessors=True)
        geo[~np.isfinite(geo)] = -1
        j = int(np.argmax(geo))
        path = [j]
        while path[-1] != start:
            path.append(int(pred[path[-1]]))
        route = coords[path[::-1]]  # root to tip
        length = path_length(route) + float(dloc[start])
        if length < max(min_length_px, aspect * half):
            continue
        off = np.array([sl[0].start, sl[1].start])
        out.append(Dendrite(tuple((coords[start] + off).tolist()), tuple((coords[j] + off).tolist()), length,
                            skeleton_length(sk), int(comp.sum()), route + off))
    return out, dead


def _half_width(li: np.ndarray, sl, comp: np.ndarray) -> float:
    """Largest distance from a pixel of a lithium component (``comp``, its pixels in the
    box ``sl``) to a pixel that is not lithium, px.

    The exact distance transform of the lithium in the box grown by 1 px gives the same
    as over the whole frame: a straight line from a pixel of the component leaves it
    within the grown box onto a pixel that is not lithium (a lithium 4-neighbour would
    belong to the component), and every pixel outside that box is farther than that.
    """
    win = grow_box(sl, 1, li.shape)
    if li[win].all():  # a component that fills the frame's width and height: the whole frame
        win = (slice(0, li.shape[0]), slice(0, li.shape[1]))
    d = ndi.distance_transform_edt(li[win])
    return float(d[tuple(slice(s.start - w.start, s.stop - w.start) for s, w in zip(sl, win))][comp].max())


@dataclass
class FrameMeasurement:
    """Everything measured on one frame (lengths nm, areas nm^2)."""

    sei_samples_nm: np.ndarray
    lithium_area_nm2: float
    dendrites: list = field(default_factory=list)  # of Dendrite (px)
    dead_lithium_count: int = 0
    bubble_count: int = 0
    bubble_area_nm2: float = 0.0


def measure_frame(mask: np.ndarray, *, pixel_size_nm: float = 1.0, min_dendrite_nm: float | None = None) -> FrameMeasurement:
    """SEI thickness samples, lithium area, dendrites, dead lithium and bubbles of one mask.

    Parameters
    ----------
    mask : numpy.ndarray
        (y, x) integer classes 0..4.
    pixel_size_nm : float
        nm per pixel.
    min_dendrite_nm : float, optional
        Shortest dendrite counted (default 6 px).
    """
    m = _check_mask(mask)
    _check_pixel(pixel_size_nm)
    min_px = 6.0 if min_dendrite_nm is None else min_dendrite_nm / pixel_size_nm
    electrode = m == ELECTRODE
    query = (m == SEI) | (m == LITHIUM)
    # shared by the SEI (its farthest pixel) and the dendrites (their skeletons' roots)
    dist = _electrode_distance(electrode, query) if (electrode.any() and query.any()) else None
    dens, dead = find_dendrites(m, min_length_px=min_px, electrode_distance=dist)
    bub = m == BUBBLE
    nb = ndi.label(bub, _S8)[1] if bub.any() else 0
    return FrameMeasurement(
        sei_samples_nm=sei_thickness_samples(m, pixel_size_nm=pixel_size_nm, electrode_distance=dist),
        lithium_area_nm2=float(np.count_nonzero(m == LITHIUM) * pixel_size_nm**2),
        dendrites=dens,
        dead_lithium_count=int(dead),
        bubble_count=int(nb),
        bubble_area_nm2=float(np.count_nonzero(bub) * pixel_size_nm**2),
    )


def _track(prev, cur, max_px, near_px: float = 3.0):
    """Match dendrites of consecutive frames (greedy, best first).

    A dendrite of the frame before and one of this frame are the same when most of the
    earlier one's skeleton path (root to tip) lies within ``near_px`` of the later one's
    (it grew on, whatever skeleton pixel was taken as its root), or failing that when
    their roots are within ``max_px``.
    """
    if not prev or not cur:
        return {}
    from scipy.spatial import cKDTree

    a = np.array([d.root for d in prev], float)
    b = np.array([d.root for d in cur], float)
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    shared = np.zeros(dist.shape)
    trees = [cKDTree(d.path) if d.path is not None and len(d.path) else None for d in cur]
    for i, d in enumerate(prev):
        if d.path is None or not len(d.path):
            continue
        for j, tree in enumerate(trees):
            if tree is not None:
                shared[i, j] = np.isfinite(tree.query(d.path, distance_upper_bound=near_px)[0]).mean()
    ok = (shared >= 0.5) | (dist <= max_px)
    pairs = {}
    for flat in np.lexsort((dist.ravel(), -shared.ravel())):
        i, j = divmod(int(flat), dist.shape[1])
        if ok[i, j] and i not in pairs.values() and j not in pairs:
            pairs[j] = i
    return pairs


def _trimmed_mean(samples: np.ndarray) -> float:
    """Mean of the samples without their lowest and highest 10 % (NaN if none).

    Robust to the few rays along the end face of a layer that stops (the edge of a
    shell) and to specks of a predicted mask, and equal to the mean for a layer whose
    thickness varies smoothly along the electrode. The number trimmed from each end is
    rounded up (one sample of 3-10, two of 11-20, ...), so a short stretch of layer
    still loses its end-face ray; 1 or 2 samples are averaged as they are.
    """
    s = np.sort(np.asarray(samples, float).ravel())
    if s.size == 0:
        return np.nan
    k = int(np.ceil(0.1 * s.size)) if s.size >= 3 else 0
    return float(s[k : s.size - k].mean())


def running_median(values: np.ndarray, size: int = 3) -> np.ndarray:
    """Centred running median of a series, ignoring NaN.

    A short median removes a single frame's misreading (a frame where a deposit or a
    speck hides part of the layer) without assuming any growth law; a step that lasts
    at least ``size // 2 + 1`` frames is kept. Near the ends the window shrinks
    symmetrically (the first and last values are kept as they are), so a steadily
    growing series is not pulled towards its neighbours there.

    Parameters
    ----------
    values : numpy.ndarray
        (n,) series (e.g. the SEI thickness per frame).
    size : int
        Window, frames (odd, >= 1).

    Returns
    -------
    numpy.ndarray
        (n,) float; NaN where the whole window is NaN.
    """
    v = np.asarray(values, float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1D, got shape {v.shape}")
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive integer, got {size!r}")
    half = int(size) // 2
    out = np.full(len(v), np.nan)
    for i in range(len(v)):
        k = min(half, i, len(v) - 1 - i)
        win = v[i - k : i + k + 1]
        win = win[np.isfinite(win)]
        if win.size:
            out[i] = float(np.median(win))
    return out


def measure_movie(masks: np.ndarray, *, pixel_size_nm: float, frame_time_s: float, min_dendrite_nm: float | None = None,
                  track_distance_nm: float | None = None):
    """Per-frame metrics and per-dendrite rows for a stack of masks.

    Dendrites are followed from frame to frame by their skeleton path (most of the
    earlier path within 3 px of the later one) or else by their root (within
    ``track_distance_nm``, default 10 px); the tip velocity of a tracked dendrite is the
    change of its root-to-tip length divided by the frame time (the slope over its
    whole growth is :func:`dendrite_tracks`).

    Parameters
    ----------
    masks : numpy.ndarray
        (frame, y, x) integer classes.
    pixel_size_nm : float
        nm per pixel.
    frame_time_s : float
        s per frame.

    Returns
    -------
    rows : list of dict
        One per frame with the keys of :data:`METRIC_COLUMNS`; ``sei_thickness_nm`` is
        the 10 %-trimmed mean of :func:`sei_thickness_samples` and
        ``sei_thickness_smoothed_nm`` its 3-frame running median (:func:`running_median`:
        no growth law assumed; the raw series stays the reported value);
        ``sei_thickness_masks_nm`` equals ``sei_thickness_nm`` here and keeps the
        mask-based value when :func:`mltem.segment.refine_sei_rows` refines it, which also
        sets ``sei_thickness_err_nm`` (the refined value's 90 % error bound; NaN here). NaN where undefined
        (no electrode: no SEI thickness; no tracked dendrite: no velocity).
    dendrite_rows : list of dict
        One per dendrite per frame with the keys of :data:`DENDRITE_COLUMNS`.
    """
    ms = _check_mask(masks, ndim=3)
    _check_pixel(pixel_size_nm)
    if not (np.isfinite(frame_time_s) and frame_time_s > 0):
        raise ValueError(f"frame_time_s must be a positive number, got {frame_time_s!r}")
    max_px = 10.0 if track_distance_nm is None else track_distance_nm / pixel_size_nm
    rows, drows = [], []
    prev, prev_ids, next_id = [], [], 0
    for t, mask in enumerate(ms):
        fm = measure_frame(mask, pixel_size_nm=pixel_size_nm, min_dendrite_nm=min_dendrite_nm)
        s = fm.sei_samples_nm
        pairs = _track(prev, fm.dendrites, max_px)
        ids, vels = [], []
        for j, d in enumerate(fm.dendrites):
            if j in pairs:
                i = pairs[j]
                ids.append(prev_ids[i])
                v = (d.length_px - prev[i].length_px) * pixel_size_nm / frame_time_s
                vels.append(v)
            else:
                ids.append(next_id)
                next_id += 1
                vels.append(np.nan)
            drows.append({
                "frame": t, "time_s": t * frame_time_s, "track": ids[-1],
                "root_y_nm": d.root[0] * pixel_size_nm, "root_x_nm": d.root[1] * pixel_size_nm,
                "tip_y_nm": d.tip[0] * pixel_size_nm, "tip_x_nm": d.tip[1] * pixel_size_nm,
                "length_nm": d.length_px * pixel_size_nm, "skeleton_nm": d.skeleton_px * pixel_size_nm,
                "tip_velocity_nm_s": vels[-1],
            })
        finite_v = [v for v in vels if np.isfinite(v)]
        rows.append({
            "frame": t,
            "time_s": t * frame_time_s,
            "sei_thickness_nm": _trimmed_mean(s),
            "sei_thickness_masks_nm": _trimmed_mean(s),
            "sei_thickness_err_nm": np.nan,
            "sei_thickness_std_nm": float(s.std()) if s.size else np.nan,
            "sei_thickness_p10_nm": float(np.percentile(s, 10)) if s.size else np.nan,
            "sei_thickness_p90_nm": float(np.percentile(s, 90)) if s.size else np.nan,
            "lithium_area_nm2": fm.lithium_area_nm2,
            "dendrite_count": len(fm.dendrites),
            "longest_dendrite_nm": max((d.length_px for d in fm.dendrites), default=0.0) * pixel_size_nm,
            "dendrite_skeleton_nm": sum(d.skeleton_px for d in fm.dendrites) * pixel_size_nm,
            "tip_velocity_nm_s": float(np.mean(finite_v)) if finite_v else np.nan,
            "dead_lithium_count": fm.dead_lithium_count,
            "bubble_count": fm.bubble_count,
            "bubble_area_nm2": fm.bubble_area_nm2,
        })
        prev, prev_ids = fm.dendrites, ids
    smoothed = running_median(np.array([r["sei_thickness_nm"] for r in rows], float), 3) if rows else []
    for r, v in zip(rows, smoothed):
        r["sei_thickness_smoothed_nm"] = float(v)
    return rows, drows


def dendrite_tracks(dendrite_rows, *, min_frames: int = 3) -> list:
    """One row per tracked dendrite with its tip growth velocity, from :func:`measure_movie`.

    The growth velocity is the least-squares slope of the dendrite's root-to-tip length
    against time over its growth: the frames it was followed in up to the one where it
    was longest (a dendrite that is then stripped shortens, and that is not growth),
    with the slope's standard error from the scatter about the line. It is a steadier
    figure than the frame-to-frame ``tip_velocity_nm_s``. A growth seen in fewer than
    ``min_frames`` frames (at least 3) gets NaN.

    Returns
    -------
    list of dict
        The keys of :data:`TRACK_COLUMNS`, ordered by track.
    """
    if min_frames < 3:
        raise ValueError(f"min_frames must be >= 3 (a slope and its error), got {min_frames}")
    by_track = {}
    for r in dendrite_rows:
        by_track.setdefault(int(r["track"]), []).append(r)
    out = []
    for k in sorted(by_track):
        rs = sorted(by_track[k], key=lambda r: r["frame"])
        t = np.array([r["time_s"] for r in rs], float)
        L = np.array([r["length_nm"] for r in rs], float)
        g = int(np.argmax(L)) + 1  # the growth: up to the longest
        v = se = np.nan
        if g >= min_frames:
            dt = t[:g] - t[:g].mean()
            dL = L[:g] - L[:g].mean()
            v = float((dt * dL).sum() / (dt * dt).sum())
            res = dL - v * dt
            se = float(np.sqrt((res * res).sum() / (g - 2) / (dt * dt).sum()))
        out.append({"track": k, "first_frame": rs[0]["frame"], "last_frame": rs[-1]["frame"], "frames": len(rs),
                    "length_first_nm": float(L[0]), "length_last_nm": float(L[-1]), "length_max_nm": float(L.max()),
                    "growth_frames": g, "growth_velocity_nm_s": v, "growth_velocity_se_nm_s": se})
    return out
