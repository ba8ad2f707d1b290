"""The trainable ``segment`` task: a small U-Net on synthetic in-situ movies.

Training data come from :func:`mltem.simulate.simulate_movie` (liquid and open cells,
random calibration, dose, contrast and geometry), optionally mixed with frames the user
labelled by hand (``data.labels``: see :func:`mltem.segment.load_labelled_frames`).
Needs ``mltem[train]`` (torch, lightning, albumentations).
"""
from __future__ import annotations

import logging

import numpy as np

from mltem.segment._preprocess import NORMALISATION, normalise_frames, stack_neighbours
from mltem.simulate._movie import CLASSES, simulate_movie
from mltem.training import Task

__all__ = ["CLASS_WEIGHTS", "LOSS_DEFAULTS", "SegmentTask", "movie_draws", "synthetic_movie", "synthetic_training_set", "ce_dice_loss",
           "loss_settings"]

log = logging.getLogger(__name__)

DATA_DEFAULTS = {
    "n_movies": 200,
    "frames": 8,
    "size": 160,
    "open_fraction": 0.25,
    "dark_lithium_probability": 0.15,
    "pixel_size_nm": [2.5, 8.0],
    "dose": [10.0, 400.0],
    "seed_offset": 0,
    "labels": None,
    "label_repeat": 20,
    "thin_sei_fraction": 0.0,
    "thin_sei_px": [3.0, 12.0],
    "faint_edge_fraction": 0.0,
    "faint_edge_ratio": [0.6, 1.5],
    "sharp_edge_fraction": 0.0,
    "haadf_fraction": 0.0,
    "loss": None,
}


def synthetic_training_set(
    n_movies: int,
    *,
    frames: int = 8,
    size: int = 160,
    seed: int = 0,
    open_fraction: float = 0.25,
    pixel_size_nm=(2.5, 8.0),
    dose=(10.0, 400.0),
    neighbours: int = 1,
    dark_lithium_probability: float = 0.15,
    thin_sei_fraction: float = 0.0,
    thin_sei_px=(3.0, 12.0),
    faint_edge_fraction: float = 0.0,
    faint_edge_ratio=(0.6, 1.5),
    sharp_edge_fraction: float = 0.0,
    haadf_fraction: float = 0.0,
    dtype=np.float32,
):
    """Network inputs and exact masks from ``n_movies`` random synthetic movies.

    Movie ``i`` uses seed ``seed * 100003 + i``; its kind, pixel size (uniform in
    ``pixel_size_nm``) and dose (log-uniform in ``dose``) are drawn from that seed.
    ``dark_lithium_probability`` is passed to the generator (liquid cells). A share
    ``thin_sei_fraction`` of the movies (drawn after the other choices, so 0 gives the
    same movies as before) gets a thin SEI: its plateau uniform in ``thin_sei_px`` (px)
    instead of the generator's 10-50 px, so the network sees more layers of a few
    pixels, where one pixel is more than 10 % of the thickness. A share
    ``faint_edge_fraction`` of the liquid cells (drawn last, so 0 again changes nothing)
    gets a faint electrode edge: the excess mass-thickness of the electrode at its edge
    (0.35 of its full value) is ``faint_edge_ratio`` (uniform) times the SEI's, so the
    electrode/SEI boundary is a weak step or even a bright line (the edge lighter than
    the SEI) before the electrode darkens inwards. The generator's own prior gives such
    edges (ratio < 1.5) to about 18 % of the liquid cells and ratio < 1 to 4 %, where the
    network placed the inner SEI surface inside the electrode. A share
    ``sharp_edge_fraction`` of the other liquid cells (drawn after that) gets a sharp
    electrode edge (:func:`sharp_edge_profile`): the electrode reaches 60-100 % of its
    mass-thickness at the boundary, as a patterned film does, where the generator draws
    a wedge of 3-15 px from 35 %. A share ``haadf_fraction`` of all movies (drawn last)
    is imaged as annular dark-field STEM (``simulate_movie(detector="haadf")``: denser
    is brighter, no fringes) instead of bright-field TEM. ``dtype``
    of the inputs may be float16 to halve the memory of a large set (the normalised
    values lie in [-3, 3]).

    Returns
    -------
    x : numpy.ndarray
        (n_movies * frames, 2 * neighbours + 1, size, size) normalised stacks (``dtype``).
    y : numpy.ndarray
        (n_movies * frames, size, size) uint8 class masks.
    """
    xs, ys = [], []
    for i in range(n_movies):
        m = synthetic_movie(seed, i, frames=frames, size=size, open_fraction=open_fraction, pixel_size_nm=pixel_size_nm,
                            dose=dose, dark_lithium_probability=dark_lithium_probability,
                            thin_sei_fraction=thin_sei_fraction, thin_sei_px=thin_sei_px,
                            faint_edge_fraction=faint_edge_fraction, faint_edge_ratio=faint_edge_ratio,
                            sharp_edge_fraction=sharp_edge_fraction, haadf_fraction=haadf_fraction)
        xs.append(stack_neighbours(normalise_frames(m.frames), neighbours=neighbours).astype(dtype))
        ys.append(m.masks)
    return np.concatenate(xs), np.concatenate(ys)


def movie_draws(seed: int, i: int, *, open_fraction: float, pixel_size_nm, dose, thin_sei_fraction: float = 0.0,
                thin_sei_px=(3.0, 12.0), faint_edge_fraction: float = 0.0, faint_edge_ratio=(0.6, 1.5),
                sharp_edge_fraction: float = 0.0, haadf_fraction: float = 0.0, frames: int | None = None,
                size: int | None = None) -> dict:
    """The random choices of movie ``i`` of ``seed`` (:func:`synthetic_movie`), without
    simulating it: ``seed`` (the generator's), ``kind``, ``pixel_size_nm``, ``dose``,
    ``sei_max_nm``, ``contrast`` and ``electrode_edge`` (None where the generator's own
    draw stands) and ``detector``. ``frames`` and ``size`` draw nothing; they are accepted so that a
    movie's settings can be passed whole."""
    s = seed * 100003 + i
    r = np.random.default_rng([s, 17])
    kind = "open" if r.random() < open_fraction else "liquid"
    px = float(r.uniform(*pixel_size_nm))
    d = float(np.exp(r.uniform(np.log(dose[0]), np.log(dose[1]))))
    sei_max_nm = None
    if thin_sei_fraction > 0 and r.random() < thin_sei_fraction:
        sei_max_nm = float(r.uniform(*thin_sei_px)) * px
    contrast = None
    if faint_edge_fraction > 0 and kind == "liquid" and r.random() < faint_edge_fraction:
        contrast = faint_edge_contrast(r, faint_edge_ratio)
    edge = None
    if sharp_edge_fraction > 0 and kind == "liquid" and contrast is None and r.random() < sharp_edge_fraction:
        edge = sharp_edge_profile(r)
    detector = "haadf" if haadf_fraction > 0 and r.random() < haadf_fraction else "bf"
    return {"seed": s, "kind": kind, "pixel_size_nm": px, "dose": d, "sei_max_nm": sei_max_nm, "contrast": contrast,
            "electrode_edge": edge, "detector": detector}


def synthetic_movie(seed: int, i: int, *, frames: int, size: int, dark_lithium_probability: float = 0.15, **choices):
    """Movie ``i`` of the random set drawn from ``seed`` (:func:`synthetic_training_set`
    describes the choices; ``choices`` are :func:`movie_draws`' settings, which makes
    them), as a :class:`mltem.simulate.SyntheticMovie`."""
    d = movie_draws(seed, i, **choices)
    return simulate_movie(frames, (size, size), kind=d["kind"], seed=d["seed"], pixel_size_nm=d["pixel_size_nm"],
                          dose=d["dose"], dark_lithium_probability=dark_lithium_probability, sei_max_nm=d["sei_max_nm"],
                          contrast=d["contrast"], electrode_edge=d["electrode_edge"], detector=d["detector"])


def sharp_edge_profile(rng) -> dict:
    """A sharp electrode edge for ``simulate_movie(electrode_edge=...)``: 60-100 % of the
    full mass-thickness at the boundary (the generator's wedge starts at 35 %), reached
    within 0-3 px."""
    return {"ramp_px": float(rng.uniform(0.0, 3.0)), "floor": float(rng.uniform(0.6, 1.0))}


def faint_edge_contrast(rng, ratio=(0.6, 1.5)) -> dict:
    """Liquid-cell contrast with a faint electrode edge (inside the generator's ranges).

    The electrode (1.0-1.6), electrolyte (0.5-1.0) and a ratio uniform in ``ratio`` are
    drawn; the SEI's relative excess is then 0.35 x electrode / (ratio x electrolyte),
    clipped to the generator's 0.2-0.6, so the electrode edge carries ``ratio`` times the
    SEI's excess mass-thickness (more where the clip at 0.6 bites).
    """
    e_mass = float(rng.uniform(1.0, 1.6))
    electrolyte = float(rng.uniform(0.5, 1.0))
    q = float(rng.uniform(*ratio))
    sei = float(np.clip(0.35 * e_mass / (q * electrolyte), 0.2, 0.6))
    return {"electrode": e_mass, "electrolyte": electrolyte, "sei": sei}


#: Cross-entropy weight per class (electrolyte, electrode, SEI, lithium, bubble): the
#: thin, rare classes (SEI layers of a few px, dendrites ~2-4 px wide) count more.
CLASS_WEIGHTS = (1.0, 1.0, 2.0, 3.0, 1.0)


#: The training loss (``data.loss`` of a config, since the spine's config has no loss
#: key): class-weighted cross entropy (``class_weights``: one weight per class, or None
#: for plain cross entropy) plus, with ``dice``, (1 - mean soft Dice). The defaults are
#: the loss every shipped stage up to 4 was trained with.
LOSS_DEFAULTS = {"class_weights": list(CLASS_WEIGHTS), "dice": True}


def ce_dice_loss(logits, target, *, class_weights=CLASS_WEIGHTS, dice: bool = True):
    """Class-weighted cross entropy plus (1 - mean soft Dice over the classes present).

    The weights (:data:`CLASS_WEIGHTS`) and the Dice term keep thin classes (SEI,
    dendrites) from drowning in the background. ``class_weights=None, dice=False`` is
    plain cross entropy, whose minimiser is the calibrated posterior.
    """
    import torch
    import torch.nn.functional as F

    y = target.long()
    wt = None if class_weights is None else torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    ce = F.cross_entropy(logits, y, weight=wt)
    if not dice:
        return ce
    p = logits.softmax(1)
    oh = F.one_hot(y, p.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    inter = (p * oh).sum((0, 2, 3))
    denom = p.sum((0, 2, 3)) + oh.sum((0, 2, 3))
    present = oh.sum((0, 2, 3)) > 0
    dice_c = (2 * inter + 1.0) / (denom + 1.0)
    return ce + (1 - dice_c[present].mean())


def loss_settings(loss, *, n_classes: int = len(CLASS_WEIGHTS)) -> dict:
    """Validated loss options: ``loss`` (a config's ``data.loss``: None or a mapping with
    ``class_weights`` and/or ``dice``) merged over :data:`LOSS_DEFAULTS`.

    Returns
    -------
    dict
        ``class_weights`` (tuple of ``n_classes`` positive floats, or None) and ``dice`` (bool).

    Raises
    ------
    MltemError
        Unknown keys, weights that are not ``n_classes`` positive finite numbers, or a
        ``dice`` that is not true/false.
    """
    from mltem._errors import MltemError

    if loss is None:
        loss = {}
    if not isinstance(loss, dict):
        raise MltemError(f"segment: data.loss must be a mapping (class_weights, dice), got {loss!r}")
    unknown = sorted(set(loss) - set(LOSS_DEFAULTS))
    if unknown:
        raise MltemError(f"segment: unknown data.loss key(s) {', '.join(map(str, unknown))}; known: {', '.join(LOSS_DEFAULTS)}")
    d = {**LOSS_DEFAULTS, **loss}
    w = d["class_weights"]
    if w is not None:
        try:
            w = tuple(float(v) for v in w)
        except (TypeError, ValueError):
            raise MltemError(f"segment: data.loss.class_weights must be a list of numbers or null, got {w!r}") from None
        if len(w) != n_classes or not all(np.isfinite(v) and v > 0 for v in w):
            raise MltemError(f"segment: data.loss.class_weights needs {n_classes} positive numbers, got {list(w)}")
    if not isinstance(d["dice"], bool):
        raise MltemError(f"segment: data.loss.dice must be true or false, got {d['dice']!r}")
    return {"class_weights": w, "dice": d["dice"]}


def _loss_key(settings: dict) -> str:
    """Register the loss of ``settings`` in the spine's loss registry; return its key.

    The default settings keep the historical key ``segment_ce_dice``.
    """
    import functools

    from mltem.training._lightning import LOSSES

    w, dice = settings["class_weights"], settings["dice"]
    if w == tuple(CLASS_WEIGHTS) and dice:
        key = "segment_ce_dice"
    else:
        key = ("segment_ce_dice" if dice else "segment_ce") + ("" if w is None else "_w" + "-".join(f"{v:g}" for v in w))
    LOSSES.setdefault(key, functools.partial(ce_dice_loss, class_weights=w, dice=dice))
    return key


class _BrightnessContrast:
    """Augmentation ``x * (1 + c) + b`` with ``b, c`` uniform in +-``limit``, unclipped.

    Uses numpy's global generator, which the training spine seeds.
    """

    def __init__(self, limit: float):
        self.limit = limit

    def __call__(self, image, **kwargs):
        b, c = np.random.uniform(-self.limit, self.limit, 2)
        return (image.astype(np.float32) * np.float32(1 + c) + np.float32(b)).astype(image.dtype)


class SegmentTask(Task):
    """Per-pixel classes of in-situ movies (see :data:`mltem.simulate.MOVIE_CLASSES`)."""

    name = "segment"
    loss = "segment_ce_dice"
    default_net = {"name": "unet", "in_channels": 3, "out_channels": 5, "base": 5, "depth": 4}
    classes = CLASSES

    def _data(self, cfg) -> dict:
        from mltem._errors import MltemError

        d = {**DATA_DEFAULTS, **(cfg.data or {})}
        d["loss"] = loss_settings(d["loss"], n_classes=int(cfg.net.get("out_channels", len(CLASS_WEIGHTS))))
        unknown = sorted(set(d) - set(DATA_DEFAULTS) - {"movie"})
        if unknown:
            raise MltemError(f"segment: unknown data key(s) {', '.join(unknown)}; known: {', '.join(sorted(DATA_DEFAULTS))}, movie")
        return d

    def loss_for(self, cfg) -> str:
        return _loss_key(self._data(cfg)["loss"])

    def make_data(self, cfg):
        d = self._data(cfg)
        neighbours = (int(cfg.net.get("in_channels", 3)) - 1) // 2
        x, y = synthetic_training_set(
            int(d["n_movies"]), frames=int(d["frames"]), size=int(d["size"]), seed=cfg.seed + int(d["seed_offset"]),
            open_fraction=float(d["open_fraction"]), pixel_size_nm=tuple(d["pixel_size_nm"]), dose=tuple(d["dose"]),
            neighbours=neighbours, dark_lithium_probability=float(d["dark_lithium_probability"]),
            thin_sei_fraction=float(d["thin_sei_fraction"]), thin_sei_px=tuple(d["thin_sei_px"]),
            faint_edge_fraction=float(d["faint_edge_fraction"]), faint_edge_ratio=tuple(d["faint_edge_ratio"]),
            sharp_edge_fraction=float(d["sharp_edge_fraction"]), haadf_fraction=float(d["haadf_fraction"]),
            dtype=np.float16,
        )
        if d["labels"]:
            from mltem.segment._labels import load_labelled_frames, tile_pairs

            ux, uy = load_labelled_frames(d["labels"], movie=d.get("movie"), neighbours=neighbours)
            ux, uy = tile_pairs(ux, uy, int(d["size"]))
            rep = int(d["label_repeat"])
            log.info("segment: %d user-labelled tiles (x%d) + %d synthetic frames", len(ux), rep, len(x))
            x = np.concatenate([x, np.repeat(ux.astype(x.dtype), rep, 0)])
            y = np.concatenate([y, np.repeat(uy, rep, 0)])
        return x, y

    def transform(self, cfg):
        import albumentations as A

        a = cfg.augment or {}
        size = int((cfg.data or {}).get("size", DATA_DEFAULTS["size"]))
        crop = int(a.get("crop", size))
        ops = []
        if crop < size:
            ops.append(A.RandomCrop(crop, crop))
        if a.get("flips", True):
            ops += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
        if a.get("brightness", 0):
            # Not A.RandomBrightnessContrast: it clips float images to [0, 1], which would
            # wipe out everything below the median of the normalised frames ([-3, 3]).
            ops.append(A.Lambda(image=_BrightnessContrast(float(a["brightness"])), p=0.5))
        return A.Compose(ops) if ops else None

    def export_info(self, cfg) -> dict:
        neighbours = (int(cfg.net.get("in_channels", 3)) - 1) // 2
        depth = int(cfg.net.get("depth", self.default_net["depth"]))
        weights = self._data(cfg)["loss"]["class_weights"]
        # onnxruntime's NCHWc layout (level "all") pads this U-Net's 5-40 channels to
        # blocks of 16 and reorders around every up-convolution and concatenation: level
        # "extended" runs a 512 x 512 frame in 29 ms against 32 ms (mltem.infer.session)
        extra = {"neighbours": neighbours, "multiple": 2**depth, "onnxruntime_graph_optimization": "extended"}
        if weights is not None:  # undone at inference (mltem.segment._infer.class_log_weights)
            extra["class_weights"] = list(weights)
        return {
            "classes": list(self.classes),
            "dynamic_spatial": True,
            "normalisation": NORMALISATION,
            "extra": extra,
        }
