"""Measurements from class masks, calibrated in nm and s (numpy/scipy/scikit-image).

Classes: 0 electrolyte/background, 1 electrode, 2 SEI, 3 lithium, 4 bubble.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "METRIC_COLUMNS",
    "DENDRITE_COLUMNS",
    "Dendrite",
    "FrameMeasurement",
    "sei_thickness_samples",
    "skeleton_length",
    "find_dendrites",
    "measure_frame",
    "measure_movie",
]

ELECTROLYTE, ELECTRODE, SEI, LITHIUM, BUBBLE = range(5)
_S8 = np.ones((3, 3), bool)
_S4 = ndi.generate_binary_structure(2, 1)

METRIC_COLUMNS = [
    "frame", "time_s", "sei_thickness_nm", "sei_thickness_std_nm", "sei_thickness_p10_nm", "sei_thickness_p90_nm",
    "lithium_area_nm2", "dendrite_count", "longest_dendrite_nm", "dendrite_skeleton_nm", "tip_velocity_nm_s",
    "dead_lithium_count", "bubble_count", "bubble_area_nm2",
]
DENDRITE_COLUMNS = [
    "frame", "time_s", "track", "root_y_nm", "root_x_nm", "tip_y_nm", "tip_x_nm", "length_nm", "skeleton_nm",
    "tip_velocity_nm_s",
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


def sei_thickness_samples(mask: np.ndarray, *, pixel_size_nm: float = 1.0) -> np.ndarray:
    """Local SEI thickness along the electrode, one sample per outer SEI boundary pixel.

    The thickness at an outer boundary pixel of the SEI (an SEI pixel 4-adjacent to
    electrolyte or bubble, away from the frame border) is its Euclidean distance to the
    nearest electrode pixel, centre to centre; for a layer ``n`` pixels thick this is
    exactly ``n`` pixels. A pixel is kept only if the next pixel outward (along the
    electrode-to-pixel direction) is electrolyte or bubble, which drops the end faces of
    a layer that stops, and if its nearest electrode pixel is not on the frame border.
    SEI not touching the electrode is ignored.

    Parameters
    ----------
    mask : numpy.ndarray
        (y, x) integer classes.
    pixel_size_nm : float
        nm per pixel.

    Returns
    -------
    numpy.ndarray
        Thickness samples, nm (empty if there is no electrode; ``[0.]`` if there is an
        electrode but no SEI on it).
    """
    m = _check_mask(mask)
    _check_pixel(pixel_size_nm)
    electrode = m == ELECTRODE
    if not electrode.any():
        return np.zeros(0)
    sei = m == SEI
    if sei.any():
        lab, n = ndi.label(sei, _S8)
        touching = np.unique(lab[ndi.binary_dilation(electrode, _S8) & sei])
        sei = np.isin(lab, touching[touching > 0])
    if not sei.any():
        return np.zeros(1)
    outside = (m == ELECTROLYTE) | (m == BUBBLE)
    outer = sei & ndi.binary_dilation(outside, _S4)
    outer[[0, -1], :] = False
    outer[:, [0, -1]] = False
    if not outer.any():
        return np.zeros(0)
    dist, (ny, nx) = ndi.distance_transform_edt(~electrode, return_indices=True)
    py, px = np.nonzero(outer)
    d = dist[py, px]
    ey, ex = ny[py, px], nx[py, px]
    # A valid sample faces the electrolyte: one pixel further along the electrode-to-pixel
    # direction is electrolyte/bubble (this drops the end faces of a layer that stops),
    # and its nearest electrode pixel is not on the frame border (where the true nearest
    # electrode may lie outside the frame).
    qy = np.rint(py + (py - ey) / d).astype(np.int64)
    qx = np.rint(px + (px - ex) / d).astype(np.int64)
    h, w = m.shape
    inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    ok = inside & ~((ey == 0) | (ey == h - 1) | (ex == 0) | (ex == w - 1))
    ok[inside] &= outside[qy[inside], qx[inside]]
    if not ok.any():
        return np.zeros(0)
    return d[ok] * pixel_size_nm


def skeleton_length(skel: np.ndarray) -> float:
    """Length of a one-pixel-wide 8-connected skeleton, px.

    Orthogonal links count 1 and diagonal links sqrt(2); a diagonal link is skipped
    where an orthogonal two-step path joins the same pixels (no double counting at
    corners).
    """
    s = np.asarray(skel, bool)
    if s.ndim != 2:
        raise ValueError(f"skel must be 2D, got shape {s.shape}")
    p = np.pad(s, 1)
    c = p[1:-1, 1:-1]
    right, down = p[1:-1, 2:], p[2:, 1:-1]
    dr, dl = p[2:, 2:], p[2:, :-2]
    left = p[1:-1, :-2]
    n_orth = np.count_nonzero(c & right) + np.count_nonzero(c & down)
    diag_dr = c & dr & ~right & ~down
    diag_dl = c & dl & ~left & ~down
    return float(n_orth + np.sqrt(2) * (np.count_nonzero(diag_dr) + np.count_nonzero(diag_dl)))


@dataclass
class Dendrite:
    """One dendrite in one frame (pixel coordinates (y, x); lengths in px)."""

    root: tuple
    tip: tuple
    length_px: float  # root (electrode/SEI surface) to tip along the skeleton
    skeleton_px: float  # total skeleton length, branches included
    area_px: int


def _graph_lengths(coords: np.ndarray, start: int) -> np.ndarray:
    """Geodesic distances along an 8-connected pixel set from ``coords[start]``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

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
    g = coo_matrix((ww, (r, c)), shape=(n, n)).tocsr()
    return dijkstra(g, directed=False, indices=start)


def find_dendrites(mask: np.ndarray, *, min_length_px: float = 6.0, aspect: float = 4.0):
    """Dendrites (elongated lithium attached to the electrode/SEI) and dead lithium.

    A lithium component (8-connected) touching the electrode or the SEI is a dendrite
    if its root-to-tip skeleton path is at least ``min_length_px`` and ``aspect`` times
    its largest half-width (so globular deposits are not counted). The root is the
    skeleton pixel closest to the electrode/SEI; the path length adds that distance.

    Parameters
    ----------
    mask : numpy.ndarray
        (y, x) integer classes.
    min_length_px : float
    aspect : float

    Returns
    -------
    dendrites : list of Dendrite
    dead_lithium : int
        Lithium components touching neither the electrode nor the SEI.
    """
    from skimage.morphology import skeletonize

    m = _check_mask(mask)
    li = m == LITHIUM
    if not li.any():
        return [], 0
    base = (m == ELECTRODE) | (m == SEI)
    lab, n = ndi.label(li, _S8)
    touching = set(np.unique(lab[ndi.binary_dilation(base, _S8) & li]).tolist()) - {0}
    dead = n - len(touching)
    if not touching:
        return [], dead
    dist_base = ndi.distance_transform_edt(~base) if base.any() else None
    inner = ndi.distance_transform_edt(li)
    skel = skeletonize(li)
    out = []
    slices = ndi.find_objects(lab)
    for k in sorted(touching):
        sl = slices[k - 1]
        comp = lab[sl] == k
        sk = skel[sl] & comp
        coords = np.argwhere(sk)
        half = float(inner[sl][comp].max())
        if len(coords) < 2:
            continue
        dloc = dist_base[sl][sk]
        start = int(np.argmin(dloc))
        geo = _graph_lengths(coords, start)
        geo[~np.isfinite(geo)] = -1
        j = int(np.argmax(geo))
        length = float(geo[j] + dloc[start])
        if length < max(min_length_px, aspect * half):
            continue
        off = np.array([sl[0].start, sl[1].start])
        out.append(Dendrite(tuple((coords[start] + off).tolist()), tuple((coords[j] + off).tolist()), length,
                            skeleton_length(sk), int(comp.sum())))
    return out, dead


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
    dens, dead = find_dendrites(m, min_length_px=min_px)
    bub = m == BUBBLE
    nb = ndi.label(bub, _S8)[1] if bub.any() else 0
    return FrameMeasurement(
        sei_samples_nm=sei_thickness_samples(m, pixel_size_nm=pixel_size_nm),
        lithium_area_nm2=float(np.count_nonzero(m == LITHIUM) * pixel_size_nm**2),
        dendrites=dens,
        dead_lithium_count=int(dead),
        bubble_count=int(nb),
        bubble_area_nm2=float(np.count_nonzero(bub) * pixel_size_nm**2),
    )


def _track(prev, cur, max_px):
    """Match dendrites of consecutive frames by root position (greedy, nearest first)."""
    if not prev or not cur:
        return {}
    a = np.array([d.root for d in prev], float)
    b = np.array([d.root for d in cur], float)
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    pairs = {}
    for flat in np.argsort(d, axis=None):
        i, j = divmod(int(flat), d.shape[1])
        if d[i, j] > max_px:
            break
        if i not in pairs.values() and j not in pairs:
            pairs[j] = i
    return pairs


def _trimmed_mean(samples: np.ndarray) -> float:
    """Mean of the samples without their lowest and highest 10 % (NaN if none).

    Robust to the few oblique samples where a layer ends (an end face cut at an angle
    to the pixel grid) and to specks of a predicted mask, and equal to the mean for a
    layer whose thickness varies smoothly along the electrode. Fewer than 10 samples
    are averaged as they are.
    """
    s = np.sort(np.asarray(samples, float).ravel())
    if s.size == 0:
        return np.nan
    k = s.size // 10
    return float(s[k : s.size - k].mean())


def measure_movie(masks: np.ndarray, *, pixel_size_nm: float, frame_time_s: float, min_dendrite_nm: float | None = None,
                  track_distance_nm: float | None = None):
    """Per-frame metrics and per-dendrite rows for a stack of masks.

    Dendrites are followed from frame to frame by their root (within
    ``track_distance_nm``, default 10 px); the tip velocity of a tracked dendrite is the
    change of its root-to-tip length divided by the frame time.

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
        the 10 %-trimmed mean of :func:`sei_thickness_samples`. NaN where undefined
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
    return rows, drows
