"""A classical labeller for in-situ movies (no network): bootstraps labels on real data.

Per frame: robust normalisation and spatio-temporal smoothing; the electrode is the
large dark region (Otsu threshold, significant against the spread of the rest) touching
the frame border; the electrolyte level is a robust quadratic fit over the rest
(background subtraction: illumination gradient, liquid thickness) and the noise its
MAD; the SEI grows from the electrode into pixels darker than the electrolyte
(region growing by binary propagation); lithium grows from the electrode/SEI into
brighter pixels; bright components that are not attached are bubbles when round, dead
lithium otherwise. A temporal majority filter makes the labels consistent in time.

It assumes bright-field contrast (electrode darkest, SEI darker than the electrolyte,
lithium and bubbles brighter). It is a bootstrap, not a replacement for the network:
see ``benchmarks/README_segment.md`` for its accuracy.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from mltem._physics import check_detector
from mltem.segment._morph import grow_box
from mltem.segment._preprocess import normalise_frames

__all__ = ["classical_labels", "clean_labels", "temporal_mode"]

_S8 = np.ones((3, 3), bool)


def temporal_mode(labels: np.ndarray, size: int, *, n_classes: int = 5) -> np.ndarray:
    """Per-pixel majority label over a window of ``size`` frames (centred).

    Ties keep the centre frame's label. Windows are shortened at the ends of the movie.

    Parameters
    ----------
    labels : numpy.ndarray
        (frame, y, x) integer classes in ``0..n_classes-1``.
    size : int
        Window length in frames (1: no smoothing; even sizes are rounded up to odd).

    Returns
    -------
    numpy.ndarray
        uint8 labels of the same shape.
    """
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be (frame, y, x), got shape {lab.shape}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    lab = lab.astype(np.uint8, copy=False)
    half = int(size) // 2
    if half == 0 or len(lab) == 1:
        return lab.copy()
    if half == 1:  # three frames: the outer two win only when they agree, ends keep their label
        out = lab.copy()
        np.copyto(out[1:-1], lab[:-2], where=lab[:-2] == lab[2:])
        return out
    out = np.empty_like(lab)
    T = len(lab)
    for t in range(T):
        win = lab[max(0, t - half) : t + half + 1]
        counts = np.stack([(win == c).sum(0, dtype=np.int16) for c in range(n_classes)])
        best = counts.argmax(0).astype(np.uint8)
        centre = lab[t]
        cbest = counts.max(0)
        ccentre = np.take_along_axis(counts, centre[None].astype(np.int64), 0)[0]
        out[t] = np.where(ccentre == cbest, centre, best)
    return out


def clean_labels(labels: np.ndarray, *, min_size_px=(0, 64, 24, 6, 24)) -> np.ndarray:
    """Remove specks: components smaller than ``min_size_px[class]`` take the nearest label.

    Small islands of a class (8-connected) are cleared and every cleared pixel gets the
    label of the nearest kept pixel (exact Euclidean distance transform). Class 0 is the
    filler and is never removed when its threshold is 0; holes in a region (e.g. noise
    specks of electrolyte inside the SEI) are filled when ``min_size_px[0]`` > 0.

    Parameters
    ----------
    labels : numpy.ndarray
        (frame, y, x) or (y, x) integer classes 0..4.
    min_size_px : sequence of int
        Smallest component kept, per class, px. The defaults keep dead-lithium
        fragments (6 px) but drop specks of electrode, SEI and bubble.

    Returns
    -------
    numpy.ndarray
        uint8 labels of the same shape.
    """
    lab = np.asarray(labels)
    if lab.ndim not in (2, 3):
        raise ValueError(f"labels must be (frame, y, x) or (y, x), got shape {lab.shape}")
    if len(min_size_px) != 5:
        raise ValueError(f"min_size_px needs one size per class (5), got {len(min_size_px)}")
    import cv2

    single = lab.ndim == 2
    lab = (lab[None] if single else lab).astype(np.uint8)
    out = lab.copy()
    for t in range(len(lab)):
        drop = np.zeros(lab.shape[1:], bool)
        for c, smin in enumerate(min_size_px):
            if smin <= 0:
                continue
            m = lab[t] == c
            if not m.any():
                continue
            # the components of ndi.label(m, _S8) (numbered otherwise; n counts label 0), in half the time
            n, cc = cv2.connectedComponents(m.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
            sizes = np.bincount(cc[m], minlength=n)
            small = np.flatnonzero(sizes[1:] < smin) + 1
            if len(small):  # a few specks: marked within their boxes, not by a gather over the frame
                boxes = ndi.find_objects(cc)
                for i in small:
                    drop[boxes[i - 1]] |= cc[boxes[i - 1]] == i
        if drop.any() and not drop.all():
            out[t] = _fill_nearest(lab[t], drop)
    return out[0] if single else out


def _fill_nearest(lab: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``lab`` with every ``drop`` pixel given the label of the nearest pixel not dropped.

    The same as one exact distance transform of the frame (``return_indices``), but each
    8-connected cluster of dropped pixels is solved in a window around it: a straight
    line from a pixel of the cluster leaves it, onto a kept pixel, within the cluster's
    bounding-box diagonal, so the nearest kept pixel lies within that distance and a
    window grown by it holds every candidate. Specks are small: 8x faster at 512 x 512.
    """
    out = lab.copy()
    clusters, _ = ndi.label(drop, _S8)
    for i, box in enumerate(ndi.find_objects(clusters), 1):
        win = grow_box(box, int(np.ceil(np.hypot(*(s.stop - s.start for s in box)))) + 2, drop.shape)
        if drop[win].all():  # a cluster that fills the frame's width and height: whole frame
            win = (slice(None), slice(None))
        _, (iy, ix) = ndi.distance_transform_edt(drop[win], return_indices=True)
        mine = clusters[win] == i
        out[win][mine] = lab[win][iy[mine], ix[mine]]
    return out


def _mad_sigma(v: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) + 1e-6


def _flatten(g: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Subtract a robust quadratic fit of the electrolyte level (illumination, thickness)."""
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    y, x = (yy / h - 0.5).ravel(), (xx / w - 0.5).ravel()
    A = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)
    sel = valid.ravel().copy()
    sel[np.arange(sel.size) % 3 != 0] = False  # a third of the pixels is plenty
    if sel.sum() < 50:
        return g - np.median(g[valid]) if valid.any() else g - np.median(g)
    v = g.ravel()
    sel &= np.abs(v - np.median(v[sel])) < 2.5 * _mad_sigma(v[sel])
    for _ in range(2):  # second pass without outliers (lithium, bubbles, SEI)
        coef, *_ = np.linalg.lstsq(A[sel], v[sel], rcond=None)
        r = v - A @ coef
        sel &= np.abs(r - np.median(r[sel])) < 2.5 * _mad_sigma(r[sel])
    return (v - A @ coef).reshape(h, w)


def _touches_border(lab, n):
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return set(border.tolist()) - {0}


def _label_frame(g: np.ndarray, *, k_sigma: float, min_area: int, electrode_min_fraction: float, smooth_px: float) -> np.ndarray:
    from skimage.filters import threshold_otsu
    from skimage.measure import regionprops

    h, w = g.shape
    out = np.zeros((h, w), np.uint8)
    # Electrode: dark, large, touching the border, clearly below the electrolyte.
    electrode = np.zeros((h, w), bool)
    t = threshold_otsu(g)
    dark = g < t
    if dark.any() and (~dark).any():
        spread = _mad_sigma(g[~dark])
        if np.median(g[~dark]) - g[dark].mean() > 4 * spread:
            dark = ndi.binary_opening(dark, iterations=2)
            lab, n = ndi.label(dark, _S8)
            if n:
                sizes = ndi.sum(dark, lab, np.arange(1, n + 1))
                keep = [k for k in _touches_border(lab, n) if sizes[k - 1] >= electrode_min_fraction * h * w]
                electrode = ndi.binary_fill_holes(np.isin(lab, keep))
    if electrode.sum() > 100:
        # A dense SEI can fall into the dark class: split it off when the dark class is
        # itself clearly bimodal (second Otsu threshold inside the electrode).
        ge = g[electrode]
        t2 = threshold_otsu(ge)
        lo_c, hi_c = ge[ge < t2], ge[ge >= t2]
        if lo_c.size and hi_c.size and hi_c.mean() - lo_c.mean() > 4 * max(_mad_sigma(lo_c), _mad_sigma(hi_c)):
            core = ndi.binary_opening(electrode & (g < t2), iterations=2)
            lab, n = ndi.label(core, _S8)
            if n:
                sizes = ndi.sum(core, lab, np.arange(1, n + 1))
                keep = [k for k in _touches_border(lab, n) if sizes[k - 1] >= electrode_min_fraction * h * w]
                if keep:
                    electrode = ndi.binary_fill_holes(np.isin(lab, keep))
    g = _flatten(g, ~electrode)
    # Noise from differences of neighbouring pixels (blind to large structures); the
    # Gaussian smoothing correlates neighbours by rho = exp(-1 / (4 s^2)).
    rho = np.exp(-1.0 / (4 * smooth_px**2)) if smooth_px > 0 else 0.0
    sigma = _mad_sigma(np.diff(g, axis=1).ravel()) / np.sqrt(2 * (1 - rho))
    bg = 0.0
    out[electrode] = 1
    # SEI: region growing from the electrode into pixels darker than the electrolyte.
    darker = (g < bg - k_sigma * sigma) & ~electrode
    sei = np.zeros((h, w), bool)
    if electrode.any() and darker.any():
        seed = darker & ndi.binary_dilation(electrode, _S8, iterations=2)
        sei = ndi.binary_propagation(seed, structure=_S8, mask=darker)
        sei = ndi.binary_opening(sei, iterations=1)
        sei = ndi.binary_closing(sei | electrode, iterations=2) & ~electrode
    out[sei] = 2
    # Lithium and bubbles: brighter than the electrolyte.
    bright = (g > bg + k_sigma * sigma) & ~electrode
    bright = ndi.binary_opening(bright, iterations=1)
    if bright.any():
        base = electrode | sei
        lab, n = ndi.label(bright, _S8)
        attached = set(np.unique(lab[ndi.binary_dilation(base, _S8, iterations=2) & bright]).tolist()) - {0} if base.any() else set()
        for rp in regionprops(lab):
            if rp.area < min_area:
                continue
            sl = rp.slice
            comp = lab[sl] == rp.label
            round_ = rp.solidity > 0.9 and rp.eccentricity < 0.85
            # attached bright matter is lithium, unless it is a large round blob (a bubble
            # pressed against the electrode); detached: bubble if round, else dead lithium
            big = rp.area > np.pi * max(8.0, 0.04 * min(h, w)) ** 2
            cls = 4 if round_ and (big or rp.label not in attached) else 3
            out[sl][comp] = cls
    return out


def classical_labels(
    frames: np.ndarray,
    *,
    smooth_px: float = 1.5,
    smooth_frames: int = 3,
    k_sigma: float = 3.0,
    min_area_px: int = 20,
    electrode_min_fraction: float = 0.02,
    detector: str = "bf",
) -> np.ndarray:
    """Label a movie without a network.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) or (y, x) intensities.
    smooth_px : float
        Gaussian smoothing, px (the noise filter before thresholds).
    smooth_frames : int
        Frames averaged before labelling and the window of the temporal majority filter
        after it (1: none).
    k_sigma : float
        Threshold above/below the electrolyte level in units of the (smoothed) noise.
    min_area_px : int
        Smaller bright components are dropped.
    electrode_min_fraction : float
        Smallest electrode area as a share of the frame.
    detector : {"bf", "haadf"}
        Bright-field TEM (denser is darker; lithium, bubbles and thin electrolyte are
        bright) or annular dark-field STEM (denser is brighter): the normalised HAADF
        frames are negated, which gives them the bright-field order of the classes.

    Returns
    -------
    numpy.ndarray
        (frame, y, x) uint8 classes (0 electrolyte, 1 electrode, 2 SEI, 3 lithium,
        4 bubble); (y, x) for a single frame.
    """
    f = np.asarray(frames)
    if f.ndim not in (2, 3):
        raise ValueError(f"frames must be (frame, y, x) or (y, x), got shape {f.shape}")
    if min(f.shape[-2:]) < 8:
        raise ValueError(f"frames must be at least 8 x 8 px, got {f.shape[-2:]}")
    if smooth_px < 0 or int(smooth_frames) != smooth_frames or smooth_frames < 1:
        raise ValueError(f"smooth_px must be >= 0 and smooth_frames a positive integer, got {smooth_px}, {smooth_frames}")
    check_detector(detector)
    single = f.ndim == 2
    g = normalise_frames(f[None] if single else f)
    if detector == "haadf":
        g = -g  # per-frame normalisation is affine, so this is the negated frame normalised
    st = (smooth_frames - 1) / 4.0 if smooth_frames > 1 else 0.0
    g = ndi.gaussian_filter(g, (st, smooth_px, smooth_px), mode="nearest")
    out = np.stack([_label_frame(x, k_sigma=k_sigma, min_area=min_area_px, electrode_min_fraction=electrode_min_fraction,
                                 smooth_px=smooth_px) for x in g])
    if smooth_frames > 1 and len(out) > 1:
        out = temporal_mode(out, smooth_frames)
    return out[0] if single else out
