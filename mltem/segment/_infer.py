"""Network inference on movies: normalisation, neighbour frames, overlap tiling with
onnxruntime, streaming chunk by chunk, temporal smoothing (numpy + onnxruntime only)."""
from __future__ import annotations

import logging

import numpy as np

from mltem._errors import MltemError
from mltem._progress import progress
from mltem.segment._classical import classical_labels, clean_labels, temporal_mode
from mltem.segment._preprocess import normalise_frames, stack_neighbours
from mltem.segment._refine import sei_probability

__all__ = ["DEFAULT_MODEL", "DETECTOR_MODELS", "labels_from_logits", "load_segment_model", "segment_frames",
           "segment_stream", "trained_detector"]

log = logging.getLogger(__name__)
DEFAULT_MODEL = "segment-unet"
#: The shipped network for each detector (:data:`mltem._physics.DETECTORS`).
DETECTOR_MODELS = {"bf": DEFAULT_MODEL, "haadf": "segment-unet-haadf"}


def trained_detector(card) -> str | None:
    """"bf" or "haadf" where the card's training recipe drew only that contrast
    (``data.haadf_fraction`` 0 or 1), else None (a mix, user labels, or no recipe)."""
    from mltem.segment._task import DATA_DEFAULTS

    data = ((card.recipe or {}).get("config") or {}).get("data") or {}
    if not data or data.get("labels"):
        return None  # no recipe, or labelled frames of the user's own contrast
    f = data.get("haadf_fraction", DATA_DEFAULTS["haadf_fraction"])
    return "bf" if f == 0 else "haadf" if f == 1 else None


def load_segment_model(model=DEFAULT_MODEL, *, threads: int | None = None):
    """The verified ONNX segmentation model (registry name, card/ONNX path or OnnxModel)."""
    from mltem.infer import OnnxModel

    if isinstance(model, OnnxModel):
        return model
    m = OnnxModel(model, task="segment", threads=threads)
    if len(m.card.classes) != 5:
        raise MltemError(f"model '{m.card.name}' has {len(m.card.classes)} classes; segmentation needs 5")
    return m


def _geometry(m, shape, tile):
    multiple = int(m.card.extra.get("multiple", 16))
    neighbours = int(m.card.extra.get("neighbours", 1))
    h, w = shape
    if tile < multiple or tile % multiple:
        raise MltemError(f"--tile must be a positive multiple of {multiple} (the network's size step), got {tile}")
    need = -(-max(h, w) // multiple) * multiple
    return min(tile, need), multiple, neighbours


def class_log_weights(m) -> np.ndarray | None:
    """log of the cross-entropy class weights the model was trained with (its card's
    ``extra.class_weights``), or None.

    A network trained with class-weighted cross entropy learns posteriors inflated by
    the weights (the minimiser of the weighted loss is ``p(c) ~ w_c q(c)``), so a thin
    weighted class (the SEI, weight 2) is predicted where it is only a third likely:
    both boundaries of the SEI move outward into the blur and the layer reads up to
    1-2 px too thick at low dose. Subtracting ``log w_c`` from the logits before the
    arg max undoes this (logit adjustment) and gives the most probable class (the Dice
    term of the training loss has no such closed-form correction and is left as is).
    """
    w = m.card.extra.get("class_weights")
    if w is None:
        return None
    w = np.asarray(w, np.float32)
    if w.shape != (len(m.card.classes),) or not (np.isfinite(w).all() and (w > 0).all()):
        raise MltemError(f"model '{m.card.name}': extra.class_weights must hold one positive number per class, got {w.tolist()}")
    return np.log(w)


def _predict(m, normed, *, neighbours, tile, overlap, multiple, batch_size, sei_prob=False, before=None, after=None):
    """Classes (and the SEI probability) of normalised frames (n, y, x), a few frames at a
    time: each step stacks its frames with their neighbours (``before``/``after`` extend
    the block, :func:`stack_neighbours`), runs them and reduces the logits to labels, so
    neither the stacked input nor the logits of a whole block are held (5 x 4 bytes per
    pixel and frame)."""
    from mltem.infer import tile_starts

    n, h, w = normed.shape
    k = neighbours
    ov = min(overlap, tile // 4) if max(h, w) > tile else 0
    tiles = len(tile_starts(max(h, tile), tile, ov)) * len(tile_starts(max(w, tile), tile, ov))
    step = max(1, batch_size // tiles)  # frames per step
    lw = class_log_weights(m)
    labels = np.empty((n, h, w), np.uint8)
    psei = np.empty((n, h, w), np.uint8) if sei_prob else None
    before = normed[:0] if before is None else np.asarray(before, np.float32)[max(0, len(before) - k) :]
    after = normed[:0] if after is None else np.asarray(after, np.float32)[:k]
    for i in progress(range(0, n, step), desc="segment", unit="step"):
        j = min(n, i + step)
        # the frames around this step (stack_neighbours takes k of them, repeating the
        # movie's first/last frame where there are fewer)
        pre = np.concatenate([before, normed[max(0, i - k) : i]])
        post = np.concatenate([normed[j : j + k], after])
        x = stack_neighbours(normed[i:j], neighbours=k, before=pre, after=post)
        logits = m.predict_tiled(x, tile=tile, overlap=ov, batch_size=batch_size, multiple=multiple, show_progress=False)
        out = labels_from_logits(logits, lw, sei_prob=sei_prob)
        if sei_prob:
            labels[i:j], psei[i:j] = out
        else:
            labels[i:j] = out
    return (labels, psei) if sei_prob else labels


def labels_from_logits(logits: np.ndarray, log_weights=None, *, sei_prob: bool = False):
    """Classes of (n, c, y, x) logits after the class-weight adjustment (``logits -
    log_weights``, :func:`class_log_weights`), and with ``sei_prob`` the SEI probability
    (:func:`mltem.segment.sei_probability`, of the logits before the adjustment).

    The same classes as ``(logits - log_weights).argmax(1)``, in one pass over the
    classes with frame-sized temporaries (no arg max across the strided class axis).
    """
    lg = np.asarray(logits, np.float32)
    lw = np.zeros(lg.shape[1], np.float32) if log_weights is None else np.asarray(log_weights, np.float32)
    labels = np.zeros((len(lg), *lg.shape[2:]), np.uint8)
    best = lg[:, 0] - lw[0]
    v = np.empty_like(best)
    for k in range(1, lg.shape[1]):  # strictly greater: ties keep the first class, as argmax does
        np.subtract(lg[:, k], lw[k], out=v)
        labels[v > best] = k
        np.maximum(best, v, out=best)
    return (labels, sei_probability(lg)) if sei_prob else labels


def segment_frames(frames: np.ndarray, *, model=DEFAULT_MODEL, tile: int = 512, overlap: int = 32,
                   smooth_frames: int = 3, batch_size: int = 4, clean: bool = True, sei_prob: bool = False):
    """Segment an in-memory movie with the network.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) or (y, x) raw intensities.
    model : str, path or OnnxModel
        Registry name (default ``segment-unet``) or model file.
    tile : int
        Tile size, px (a multiple of the network's size step, 16); frames larger than a
        tile are run in tiles that overlap by ``overlap`` px and are blended.
    overlap : int
    smooth_frames : int
        Window of the temporal majority filter (1: none).
    batch_size : int
        Tiles per onnxruntime call.
    clean : bool
        Remove specks with :func:`mltem.segment.clean_labels` (after the temporal filter).
    sei_prob : bool
        Also return the network's SEI probability (uint8, x 255, before the class-weight
        adjustment), the input of the SEI refinement (:mod:`mltem.segment._refine`).

    Returns
    -------
    numpy.ndarray
        uint8 classes, same shape as ``frames`` (and the SEI probability with ``sei_prob``).
    """
    f = np.asarray(frames)
    if f.ndim not in (2, 3):
        raise ValueError(f"frames must be (frame, y, x) or (y, x), got shape {f.shape}")
    single = f.ndim == 2
    f = f[None] if single else f
    m = load_segment_model(model)
    tile, multiple, k = _geometry(m, f.shape[1:], tile)
    out = _predict(m, normalise_frames(f), neighbours=k, tile=tile, overlap=overlap, multiple=multiple,
                   batch_size=batch_size, sei_prob=sei_prob)
    out, psei = out if sei_prob else (out, None)
    if smooth_frames > 1 and len(out) > 1:
        out = temporal_mode(out, smooth_frames)
    if clean:
        out = clean_labels(out)
    if single:
        out, psei = out[0], (None if psei is None else psei[0])
    return (out, psei) if sei_prob else out


def segment_stream(chunks, n_frames: int, frame_shape, *, model=DEFAULT_MODEL, classical: bool = False, tile: int = 512,
                   overlap: int = 32, smooth_frames: int = 3, batch_size: int = 4, clean: bool = True,
                   sei_prob: bool = False, detector: str = "bf"):
    """Segment a long movie chunk by chunk (e.g. from :func:`mltem.io.iter_chunks`).

    Only the current chunk, one look-ahead chunk and the uint8 masks are held in
    memory. The network sees each frame with its neighbours across chunk boundaries;
    the temporal majority filter runs on the finished masks.

    Parameters
    ----------
    chunks : iterable of (int, numpy.ndarray)
        ``(start, block)`` with ``block`` (n, y, x) in frame order.
    n_frames : int
        Total number of frames.
    frame_shape : tuple of int
        (y, x).
    model : str, path or OnnxModel
    classical : bool
        Use the classical labeller instead of the network.
    detector : {"bf", "haadf"}
        The movie's contrast, for the classical labeller (a network knows its own).
    tile, overlap, smooth_frames, batch_size, clean, sei_prob
        See :func:`segment_frames` (the classical labeller gives no SEI probability:
        None).

    Returns
    -------
    numpy.ndarray
        (n_frames, y, x) uint8 classes (and the SEI probability with ``sei_prob``).
    """
    if int(smooth_frames) != smooth_frames or smooth_frames < 1:
        raise MltemError(f"--smooth-frames must be a positive integer, got {smooth_frames}")
    masks = np.zeros((n_frames, *frame_shape), np.uint8)
    psei = np.zeros((n_frames, *frame_shape), np.uint8) if (sei_prob and not classical) else None
    it = iter(chunks)
    if classical:
        for start, block in it:
            masks[start : start + len(block)] = classical_labels(block, smooth_frames=1, detector=detector)
    else:
        m = load_segment_model(model)
        tile, multiple, k = _geometry(m, frame_shape, tile)
        cur = next(it, None)
        before = None
        while cur is not None:
            nxt = next(it, None)
            start, block = cur
            normed = normalise_frames(block)
            after = normalise_frames(nxt[1][:k]) if (nxt is not None and k) else None
            lab = _predict(m, normed, neighbours=k, before=before, after=after, tile=tile, overlap=overlap,
                           multiple=multiple, batch_size=batch_size, sei_prob=psei is not None)
            if psei is not None:
                lab, psei[start : start + len(block)] = lab
            masks[start : start + len(block)] = lab
            before = normed[-k:] if k else None
            cur = nxt
    if smooth_frames > 1 and n_frames > 1:
        masks = temporal_mode(masks, smooth_frames)
    if clean:
        for i in range(0, n_frames, 64):
            masks[i : i + 64] = clean_labels(masks[i : i + 64])
    return (masks, psei) if sei_prob else masks
