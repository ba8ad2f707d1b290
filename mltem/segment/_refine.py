"""Sub-pixel refinement of the SEI thickness from the edge profile of the movie.

The SEI of a liquid cell is a few pixels thick (25-70 nm at 3-8 nm/px), so a boundary
one pixel off is already a 10-25 % error. The network finds the outer SEI surface to
0.3-0.5 px, but where the electrode edge carries no more mass-thickness than the SEI
(a tapered edge, a light wire) it can put the inner surface 1-3 px inside the electrode.
The image still shows the true boundary: averaged along the whole electrode surface and
over neighbouring frames, the mass-thickness profile across it has a dip or a kink
there, at a noise level far below that of one pixel.

This module measures that profile: the mean intensity in 1 px bins of signed distance
from the predicted electrode surface (only surface that carries predicted SEI, away
from lithium and bubbles), pooled over a window of frames, as ``-log(I / I_electrolyte)``,
together with the network's mean SEI probability in the same bins. A gradient-boosted
regressor, trained on synthetic movies segmented by the same network, reads from them
how far the mask-based thickness is off (in px) and the correction is subtracted. A
second ensemble, trained on the first one's out-of-fold residuals, gives each frame a
90 % bound on the error of the refined value (``sei_thickness_err_nm``): the refined
thickness is within that bound of the truth in 9 frames of 10.

The network's bias depends on the shape of the electrode edge: at a wedge (a tapered
edge) it tends to put the inner SEI surface inside the electrode, at a step (a patterned
film, full mass-thickness at the boundary) outside it, so the layer reads thin. A
refiner may therefore hold two corrections and a gate, a classifier that reads from the
same profile how likely the edge is a step; its correction is the two experts' mean
weighted by that probability.

The regressor corrects one network's bias, so its card names the sha256 of the
segmentation model it was trained for and it is used only with that model. It is stored
as plain arrays (``.npz``, the nodes of every tree) and evaluated here with numpy; no
pickle is loaded.
"""
from __future__ import annotations

import os

import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit

from mltem._errors import MltemError
from mltem.segment._measure import BUBBLE, ELECTRODE, LITHIUM, SEI
from mltem.segment._morph import bounding_box, dilate_square, grow_box

__all__ = [
    "BOUND_QUANTILE",
    "DEFAULT_REFINER",
    "PROFILE_BINS",
    "SeiRefiner",
    "THICKNESS_FEATURE",
    "clip_correction",
    "edge_profiles",
    "load_sei_refiner",
    "refine_features",
    "refine_sei_rows",
    "sei_probability",
]

DEFAULT_REFINER = "segment-sei-refine"
#: Signed distance from the predicted electrode surface covered by the profile, px
#: (negative inside the electrode), in 1 px bins.
PROFILE_BINS = (-12, 30)
#: Frames pooled for one profile (the length of the training movies).
WINDOW = 12
#: Coverage of the error bound (the quantile of the absolute error it was fitted to).
BOUND_QUANTILE = 0.9
#: Smallest error bound, px: the pixel grid's own error on a layer measured on exact
#: masks (up to a quarter of a pixel).
BOUND_FLOOR_PX = 0.25
_BOUND, _GATE, _STEP = "bound_", "gate_", "step_"
#: Column of :func:`refine_features` holding the frame's mask-based thickness, px.
THICKNESS_FEATURE = -4
#: Largest correction, as a fraction of the mask-based thickness (either way).
CLIP_FRACTION = 0.5


def sei_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax probability of the SEI class (channel 2) of (n, 5, y, x) logits, as uint8
    (x 255, truncated, as the refiner was trained).

    ``p = exp(l_SEI - max) / sum_c exp(l_c - max)`` is at most ``exp(l_SEI - max)`` (the
    sum is >= 1), so where the SEI logit lies more than log(255) = 5.54 below the largest
    it truncates to 0: the softmax is evaluated only near the SEI (a few % of a frame),
    with frame-sized temporaries rather than reductions across the strided class axis.
    """
    lg = np.asarray(logits, np.float32)
    mx = lg[:, 0].copy()
    for k in range(1, lg.shape[1]):
        np.maximum(mx, lg[:, k], out=mx)
    near = np.nonzero(lg[:, SEI] - mx >= np.float32(-5.6))
    m = mx[near]
    total = np.zeros_like(m)
    for k in range(lg.shape[1]):  # summed in class order, as numpy sums over the class axis
        e = np.exp(lg[near[0], k, near[1], near[2]] - m)
        total += e
        if k == SEI:
            num = 255 * e
    out = np.zeros(mx.shape, np.uint8)
    out[near] = (num / total).astype(np.uint8)
    return out


def clip_correction(correction, thickness):
    """``correction`` clipped to :data:`CLIP_FRACTION` of the mask-based ``thickness``
    either way (same units; a NaN thickness allows none). The one rule for the shipped
    correction and for the training targets of its error bound."""
    limit = CLIP_FRACTION * np.nan_to_num(np.asarray(thickness, float))
    return np.clip(correction, -limit, limit)


def _surface_window(electrode, margin: int):
    """The bounding box of the electrode surface (the pixels either side of it), grown by
    ``margin`` px and clipped to the frame, as a pair of slices."""
    return grow_box(bounding_box(dilate_square(electrode) & dilate_square(~electrode)), margin, electrode.shape)


def _frame_profile(img, labels, psei, nb, lo):
    electrode = labels == ELECTRODE
    if not electrode.any() or electrode.all():
        return None
    # Everything the profile reads lies within 30 px of the electrode surface, and the
    # nearest pixel across the surface is always next to it: the distance transforms and
    # masks are computed in the surface's box grown by that reach plus the 3 px of the
    # lithium/bubble exclusion (the same numbers as over the whole frame, a fraction of
    # the work along an electrode edge).
    reach = max(-lo, lo + nb, 20) + 2
    win = _surface_window(electrode, reach + 4)
    e, lab = electrode[win], labels[win]
    d_out, i_out = ndi.distance_transform_edt(~e, return_indices=True)
    d_in, i_in = ndi.distance_transform_edt(e, return_indices=True)
    dist = np.where(e, -(d_in - 0.5), d_out - 0.5)  # signed distance to the surface, px
    iy = np.where(e, i_in[0], i_out[0])  # the nearest pixel across the surface
    ix = np.where(e, i_in[1], i_out[1])
    sei = lab == SEI
    # Keep pixels whose nearest surface point (across the electrode boundary) carries SEI.
    covered_e = e & dilate_square(sei)
    covered_s = sei & dilate_square(e)
    ok = np.where(e, covered_s[iy, ix], covered_e[iy, ix])
    ok &= ~dilate_square((lab == LITHIUM) | (lab == BUBBLE), 3)
    h, w = labels.shape
    gy = np.arange(win[0].start, win[0].stop)
    gx = np.arange(win[1].start, win[1].stop)
    ok[(gy < 4) | (gy >= h - 4)] = False  # 4 px from the frame's edges
    ok[:, (gx < 4) | (gx >= w - 4)] = False
    sel = ok & (dist >= lo) & (dist < lo + nb)
    if sel.sum() < 50:
        return None
    b = np.floor(dist[sel] - lo).astype(np.intp)
    n = np.bincount(b, None, nb)
    s = np.bincount(b, img[win][sel], nb)
    q = np.bincount(b, psei[win][sel], nb)
    bg = labels == 0
    if bg.sum() > 200:
        core = bg & ~dilate_square(~bg, 8)
        level = float(np.median(img[core])) if core.any() else np.nan
    else:  # pixels more than 20 px outside the electrode (all of those beyond the window)
        far = ~electrode
        far[win] = dist > 20
        level = float(np.median(img[far])) if far.any() else np.nan
    return n, s, q, level


def edge_profiles(frames, labels, p_sei) -> dict:
    """Per-frame sums of intensity and SEI probability across the SEI-covered electrode surface.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) raw intensities (counts).
    labels : numpy.ndarray
        (frame, y, x) classes (the post-processed masks).
    p_sei : numpy.ndarray
        (frame, y, x) uint8 SEI probability x 255 (:func:`sei_probability`).

    Returns
    -------
    dict
        ``n``, ``s``, ``q``: (frame, bins) pixel counts, intensity sums and SEI-probability
        sums per bin of :data:`PROFILE_BINS`; ``level``: (frame,) electrolyte intensity
        (median away from every other class), NaN where a frame has no usable surface.
    """
    lo, hi = PROFILE_BINS
    nb = hi - lo
    f = np.asarray(frames)
    T = len(f)
    out = {"n": np.zeros((T, nb)), "s": np.zeros((T, nb)), "q": np.zeros((T, nb)), "level": np.full(T, np.nan)}
    for t in range(T):
        r = _frame_profile(f[t].astype(np.float32), labels[t], p_sei[t].astype(np.float32) / 255, nb, lo)
        if r is not None:
            out["n"][t], out["s"][t], out["q"][t], out["level"][t] = r
    return out


def _window(t, T, size):
    a = min(max(t - size // 2, 0), max(T - size, 0))
    return a, min(a + size, T)


def refine_features(profiles: dict, thickness_px, *, window: int = WINDOW) -> np.ndarray:
    """Regressor inputs per frame from :func:`edge_profiles` and the mask-based thickness.

    Frame ``t`` pools the profiles of the ``window`` frames around it (the whole movie
    when it is shorter): the mass-thickness profile ``-log(I / I_electrolyte)``, its
    differences, the same normalised to the step at the surface, and the mean SEI
    probability per bin; then the window's median thickness, the frame's thickness and
    its departure from that median, and the distance (clipped to 3) to the first and last
    frame of the movie, where the network saw repeated neighbours.

    Returns
    -------
    numpy.ndarray
        (frame, features) float64, finite.
    """
    g = np.asarray(thickness_px, float)
    T = len(g)
    rows = []
    for t in range(T):
        a, b = _window(t, T, window)
        n = profiles["n"][a:b].sum(0)
        s = profiles["s"][a:b].sum(0)
        q = profiles["q"][a:b].sum(0)
        lv = profiles["level"][a:b]
        level = np.nanmedian(lv) if np.isfinite(lv).any() else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            prof = s / np.maximum(n, 1) / level
            mt = np.nan_to_num(-np.log(np.clip(prof, 1e-3, None)))
        far = mt[-6:].mean()
        e0 = mt[-PROFILE_BINS[0]]  # the bin just outside the surface, [0, 1) px
        nm = (mt - far) / (abs(e0 - far) + 1e-3)
        gw = g[a:b]
        gm = float(np.nanmedian(gw)) if np.isfinite(gw).any() else 0.0
        rows.append(np.concatenate([mt, np.diff(mt), nm, np.diff(nm), q / np.maximum(n, 1),
                                    [gm, g[t], g[t] - gm, min(t, 3), min(T - 1 - t, 3)]]))
    return np.nan_to_num(np.array(rows, float))


class SeiRefiner:
    """Gradient-boosted tree ensembles stored as arrays, evaluated with numpy.

    Parameters
    ----------
    arrays : mapping
        ``feature`` (int), ``threshold`` (float), ``left``, ``right`` (global node
        indices), ``leaf`` (bool), ``value`` (float), ``roots`` (the first node of each
        tree) and ``baseline`` (scalar). A sample goes left where
        ``x[feature] <= threshold``; the ensemble's output is ``baseline`` plus the leaf
        values. The same keys prefixed ``bound_`` (optional) hold a second ensemble on the
        same inputs, the :data:`BOUND_QUANTILE` quantile of the absolute error, px, left
        after the correction (:meth:`bound`). Prefixed ``gate_`` and ``step_`` (optional,
        both or neither) they hold a classifier whose output is the log-odds that the
        electrode edge is a step, and the correction for a step edge (:meth:`predict`).
    card : ModelCard, optional
    """

    def __init__(self, arrays, card=None):
        arrays = dict(arrays)
        parts = {p: {k[len(p):]: v for k, v in arrays.items() if k.startswith(p)} for p in (_BOUND, _GATE, _STEP)}
        arrays = {k: v for k, v in arrays.items() if not k.startswith((_BOUND, _GATE, _STEP))}
        self.error_bound = SeiRefiner(parts[_BOUND]) if parts[_BOUND] else None
        self.gate = SeiRefiner(parts[_GATE]) if parts[_GATE] else None
        self.step_correction = SeiRefiner(parts[_STEP]) if parts[_STEP] else None
        if (self.gate is None) != (self.step_correction is None):
            raise MltemError("SEI refiner: a gate needs a step-edge correction and the other way round")
        self.feature = np.asarray(arrays["feature"], np.intp)
        self.threshold = np.asarray(arrays["threshold"], float)
        self.left = np.asarray(arrays["left"], np.intp)
        self.right = np.asarray(arrays["right"], np.intp)
        self.leaf = np.asarray(arrays["leaf"], bool)
        self.value = np.asarray(arrays["value"], float)
        self.roots = np.asarray(arrays["roots"], np.intp)
        self.baseline = float(np.asarray(arrays["baseline"]))
        self.n_features = int(np.asarray(arrays["n_features"]))
        self.card = card
        for name, part in (("error bound", self.error_bound), ("gate", self.gate), ("step correction", self.step_correction)):
            if part is not None and part.n_features != self.n_features:
                raise MltemError(f"SEI refiner: the {name} takes another number of features than the correction")
        n = len(self.feature)
        for k in ("threshold", "left", "right", "leaf", "value"):
            if len(getattr(self, k)) != n:
                raise MltemError(f"SEI refiner: array '{k}' has {len(getattr(self, k))} nodes, 'feature' has {n}")
        inner = ~self.leaf
        if inner.any() and (self.left[inner].max() >= n or self.right[inner].max() >= n
                            or self.left[inner].min() < 0 or self.feature[inner].max() >= self.n_features):
            raise MltemError("SEI refiner: a node points outside the tree arrays")

    @classmethod
    def from_sklearn(cls, model, n_features: int) -> "SeiRefiner":
        """Arrays of a fitted ``sklearn.ensemble.HistGradientBoostingRegressor`` (numeric features)."""
        feats, thr, left, right, leaf, val, roots = [], [], [], [], [], [], []
        off = 0
        for (pred,) in model._predictors:
            nd = pred.nodes
            roots.append(off)
            feats.append(nd["feature_idx"])
            thr.append(nd["num_threshold"])
            left.append(np.where(nd["is_leaf"], 0, nd["left"] + off))
            right.append(np.where(nd["is_leaf"], 0, nd["right"] + off))
            leaf.append(nd["is_leaf"].astype(bool))
            val.append(nd["value"])
            off += len(nd)
        return cls({"feature": np.concatenate(feats), "threshold": np.concatenate(thr), "left": np.concatenate(left),
                    "right": np.concatenate(right), "leaf": np.concatenate(leaf), "value": np.concatenate(val),
                    "roots": np.array(roots), "baseline": float(np.ravel(model._baseline_prediction)[0]),
                    "n_features": n_features})

    @classmethod
    def mean(cls, ensembles) -> "SeiRefiner":
        """One ensemble whose output is the mean of ``ensembles``' outputs (their trees
        side by side, leaf values and baselines divided by their number; a bagged fit)."""
        ens = list(ensembles)
        k = len(ens)
        if k == 1:
            return ens[0]
        off = np.cumsum([0] + [len(e.feature) for e in ens[:-1]])

        def children(side):  # global node indices; a leaf keeps 0
            return np.concatenate([np.where(e.leaf, 0, getattr(e, side) + o) for e, o in zip(ens, off)])

        return cls({"feature": np.concatenate([e.feature for e in ens]),
                    "threshold": np.concatenate([e.threshold for e in ens]),
                    "left": children("left"), "right": children("right"),
                    "leaf": np.concatenate([e.leaf for e in ens]),
                    "value": np.concatenate([e.value for e in ens]) / k,
                    "roots": np.concatenate([e.roots + o for e, o in zip(ens, off)]),
                    "baseline": float(np.mean([e.baseline for e in ens])), "n_features": ens[0].n_features})

    def with_bound(self, bound: "SeiRefiner") -> "SeiRefiner":
        """This correction with ``bound`` (an ensemble on the same inputs) as its error bound."""
        return SeiRefiner({**self.arrays(), **{_BOUND + k: v for k, v in bound.arrays().items()}}, card=self.card)

    def with_gate(self, gate: "SeiRefiner", step_correction: "SeiRefiner") -> "SeiRefiner":
        """This correction (for wedge edges) gated with ``step_correction`` by ``gate``
        (a classifier ensemble: the log-odds of a step edge)."""
        return SeiRefiner({**self.arrays(), **{_GATE + k: v for k, v in gate.arrays().items()},
                           **{_STEP + k: v for k, v in step_correction.arrays().items()}}, card=self.card)

    def arrays(self) -> dict:
        a = {"feature": self.feature.astype(np.int32), "threshold": self.threshold, "left": self.left.astype(np.int32),
             "right": self.right.astype(np.int32), "leaf": self.leaf, "value": self.value,
             "roots": self.roots.astype(np.int32), "baseline": np.float64(self.baseline),
             "n_features": np.int32(self.n_features)}
        for prefix, part in ((_BOUND, self.error_bound), (_GATE, self.gate), (_STEP, self.step_correction)):
            if part is not None:
                a.update({prefix + k: v for k, v in part.arrays().items()})
        return a

    def bound(self, x: np.ndarray) -> np.ndarray | None:
        """(n,) :data:`BOUND_QUANTILE` bounds, px, on the error of the corrected thickness
        (at least :data:`BOUND_FLOOR_PX`), or None for a refiner without an error bound."""
        if self.error_bound is None:
            return None
        return np.maximum(self.error_bound.output(x), BOUND_FLOOR_PX)

    def step_probability(self, x: np.ndarray) -> np.ndarray | None:
        """(n,) the gate's probability that the electrode edge is a step, or None without a gate."""
        if self.gate is None:
            return None
        return expit(self.gate.output(x))

    def predict(self, x: np.ndarray, *, step_probability: np.ndarray | None = None) -> np.ndarray:
        """(n,) corrections, px, for (n, features) inputs: the ensemble's output, or with a
        gate the mean of it and the step-edge correction weighted by :meth:`step_probability`
        (pass that probability, if already evaluated for ``x``, as ``step_probability``)."""
        if self.gate is None:
            return self.output(x)
        p = self.step_probability(x) if step_probability is None else step_probability
        return (1 - p) * self.output(x) + p * self.step_correction.output(x)

    def output(self, x: np.ndarray) -> np.ndarray:
        """(n,) this ensemble's own output (baseline plus leaf values) for (n, features) inputs."""
        x = np.asarray(x, float)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise MltemError(f"SEI refiner: expected (n, {self.n_features}) features, got shape {x.shape}")
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        while True:
            inner = ~self.leaf[node]
            if not inner.any():
                break
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.baseline + self.value[node].sum(1)


def load_sei_refiner(segment_card, name=None):
    """The SEI refiner trained for the segmentation model of ``segment_card``, or None.

    Without ``name``, the registered refiner whose card names this model's sha256
    (``extra.segment_model_sha256``; :data:`DEFAULT_REFINER` first where several do).
    With ``name`` (a registry name or a card/``.npz`` path), that refiner, or None where
    it is not registered or was trained for another segmentation model (a fine-tuned
    network has other biases; retrain the refiner for it with ``train/sei_refine.py``).
    A refiner whose file does not match its card's sha256 is an error.
    """
    from mltem.registry import find_model, list_models

    if segment_card is None:
        return None
    if name is None:
        mine = [c for c in list_models()
                if c.task == "segment-refine" and c.extra.get("segment_model_sha256") == segment_card.sha256]
        if not mine:
            return None  # no refiner for this network: the mask-based thickness stands
        name = min(mine, key=lambda c: (c.name != DEFAULT_REFINER, c.name)).name
    s = os.fspath(name)
    bare = not (s.endswith((".json", ".npz")) or os.sep in s)
    if bare and not any(c.name == s for c in list_models()):
        return None  # no refiner registered: the mask-based thickness stands
    card = find_model(s, task="segment-refine")
    if card.extra.get("segment_model_sha256") != segment_card.sha256:
        return None
    with np.load(card.path, allow_pickle=False) as z:
        return SeiRefiner({k: z[k] for k in z.files}, card=card)


def refine_sei_rows(rows: list, profiles: dict, refiner: SeiRefiner, *, pixel_size_nm: float) -> np.ndarray:
    """Subtract the refiner's correction from the SEI thickness of :func:`measure_movie` rows.

    ``sei_thickness_nm`` (and its p10/p90, which the boundary shift moves alike) become
    the refined values, ``sei_thickness_masks_nm`` keeps the value measured on the masks,
    ``sei_thickness_smoothed_nm`` is recomputed and, where the refiner has an error bound,
    ``sei_thickness_err_nm`` is set (its :data:`BOUND_QUANTILE` bound on the error of the
    refined value, nm) and, where it has a gate, ``sei_edge_step_probability`` (how
    likely the electrode edge is a step, from the frame's pooled profile; NaN otherwise).
    Frames without an SEI stay NaN; a correction is clipped to half
    the mask-based value either way (:func:`clip_correction`; on the training movies the
    truth lies outside 0.5-1.5 times that value in 0.5 % of frames, mostly a layer the
    masks nearly missed, where a large correction is more often wrong).

    Returns
    -------
    numpy.ndarray
        (frame,) corrections, nm (0 where there is no SEI).
    """
    from mltem.segment._measure import running_median

    raw = np.array([r["sei_thickness_nm"] for r in rows], float)
    corr = np.zeros(len(rows))
    err = np.full(len(rows), np.nan)
    step = np.full(len(rows), np.nan)
    ok = np.isfinite(raw)
    if ok.any():
        x = refine_features(profiles, raw / pixel_size_nm)
        p = refiner.step_probability(x)  # the gate, evaluated once for the correction and the report
        if p is not None:
            step = np.where(ok, p, np.nan)
        corr = np.where(ok, clip_correction(refiner.predict(x, step_probability=p) * pixel_size_nm, raw), 0.0)
        b = refiner.bound(x)
        if b is not None:
            err = np.where(ok, b * pixel_size_nm, np.nan)
    smoothed = running_median(raw - corr, 3)
    for r, v, c, s, e, q in zip(rows, raw, corr, smoothed, err, step):
        r["sei_thickness_masks_nm"] = float(v)
        r["sei_thickness_err_nm"] = float(e)
        r["sei_edge_step_probability"] = float(q)
        r["sei_thickness_nm"] = float(v - c)
        for k in ("sei_thickness_p10_nm", "sei_thickness_p90_nm"):
            r[k] = float(r[k] - c)
        r["sei_thickness_smoothed_nm"] = float(s)
    return corr
