"""Running ONNX models with onnxruntime: cached sessions, batching, overlap tiling.

Needs only numpy and onnxruntime.
"""
from __future__ import annotations

import functools
import logging
import os

import numpy as np

from mltem._errors import MltemError
from mltem._progress import progress
from mltem.registry import ModelCard, find_model

__all__ = ["OnnxModel", "session", "tile_starts", "blend_window"]

log = logging.getLogger(__name__)


#: onnxruntime graph optimisation levels a card may ask for (``extra.onnxruntime_graph_optimization``)
GRAPH_OPTIMIZATION = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


@functools.lru_cache(maxsize=16)
def _cached_session(path: str, sha256: str, threads: int, optimization: str = "all"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[optimization])
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def session(card: ModelCard, *, threads: int = 0):
    """An onnxruntime session for a verified card, cached per (file, sha256, threads).

    The graph optimisation level is the card's ``extra.onnxruntime_graph_optimization``
    (``basic``, ``extended`` or ``all``; default ``all``, onnxruntime's own default): the
    fastest level depends on the network (all levels give the same outputs to rounding).
    """
    level = card.extra.get("onnxruntime_graph_optimization", "all")
    if level not in GRAPH_OPTIMIZATION:
        raise MltemError(f"model '{card.name}': extra.onnxruntime_graph_optimization must be one of "
                         f"{', '.join(GRAPH_OPTIMIZATION)}, got {level!r}", path=card.path)
    try:
        return _cached_session(str(card.path.resolve()), card.sha256, int(threads), level)
    except Exception as exc:  # onnxruntime raises its own types for corrupt models
        raise MltemError(f"onnxruntime cannot load model '{card.name}' ({exc})", path=card.path) from exc


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of size ``tile`` covering ``length`` with >= ``overlap``.

    The last tile is aligned to the end, so every tile lies inside the data.
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


@functools.lru_cache(maxsize=8)
def blend_window(tile: int, overlap: int) -> np.ndarray:
    """Separable 2D weight that ramps linearly over ``overlap`` pixels at each edge."""
    w = np.ones(tile, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = ramp
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return np.outer(w, w)


class OnnxModel:
    """A verified ONNX model ready to run.

    Parameters
    ----------
    model : str, os.PathLike or ModelCard
        Registry name, card/ONNX path, or a card already verified.
    task : str, optional
        Require the model to serve this task.
    threads : int, optional
        onnxruntime intra-op threads; default from ``MLTEM_THREADS`` (the CLI's
        ``--threads``), else all cores.

    Examples
    --------
    >>> m = OnnxModel("segment-unet")                     # doctest: +SKIP
    >>> logits = m.predict_tiled(frames[:, None], tile=256)  # doctest: +SKIP
    """

    def __init__(self, model, *, task: str | None = None, threads: int | None = None):
        self.card = model if isinstance(model, ModelCard) else find_model(model, task=task)
        self.session = session(self.card, threads=default_threads() if threads is None else threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        in_shape = self.session.get_inputs()[0].shape
        self.input_rank = len(in_shape)
        self.fixed_shape = tuple(d if isinstance(d, int) else None for d in in_shape[1:])

    def __call__(self, batch: np.ndarray):
        """Run one batch; returns the first output (or a dict if there are several)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != self.input_rank:
            raise MltemError(
                f"model '{self.card.name}' takes input of rank {self.input_rank} "
                f"(batch, {', '.join(str(d or '?') for d in self.fixed_shape)}), got shape {batch.shape}"
            )
        out = self.session.run(None, {self.input_name: batch})
        return out[0] if len(out) == 1 else dict(zip(self.output_names, out))

    def predict(self, x: np.ndarray, *, batch_size: int = 32, desc: str = "", show_progress: bool = True):
        """Run ``x`` (N, ...) in batches, with a progress bar (unless ``show_progress`` is
        False: a caller that shows its own); outputs are concatenated."""
        x = np.asarray(x)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not len(x):
            raise MltemError("nothing to run: the input is empty")
        outs, full = [], None
        steps = range(0, len(x), batch_size)
        for i in progress(steps, desc=desc or self.card.name, unit="batch") if show_progress else steps:
            o = self(x[i : i + batch_size])
            if isinstance(o, dict):
                outs.append(o)
                continue
            if full is None:
                if len(o) == len(x):  # one batch: its output as it is
                    return o
                full = np.empty((len(x), *o.shape[1:]), o.dtype)  # filled in place: no second copy
            full[i : i + len(o)] = o
        if full is not None:
            return full
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def predict_tiled(
        self,
        images: np.ndarray,
        *,
        tile: int = 256,
        overlap: int = 32,
        batch_size: int = 8,
        multiple: int = 1,
        desc: str = "",
        show_progress: bool = True,
    ) -> np.ndarray:
        """Run a fully convolutional model over large images with overlapping tiles.

        Tiles overlap by ``overlap`` pixels and are blended with linear ramps, so
        there are no seams. Images smaller than a tile are padded (reflect).

        Parameters
        ----------
        images : numpy.ndarray
            (N, C, H, W) float32.
        tile : int
            Tile size in pixels (a multiple of ``multiple``).
        overlap : int
            Overlap between neighbouring tiles in pixels.
        batch_size : int
            Tiles per onnxruntime call.
        multiple : int
            The network's size granularity (2**levels for a U-Net).
        desc, show_progress
            The progress bar's label; False leaves it out.

        Returns
        -------
        numpy.ndarray
            (N, C_out, H, W) blended outputs.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if tile % multiple:
            raise ValueError(f"tile ({tile}) must be a multiple of {multiple}")
        n, c, h, w = images.shape
        ph, pw = max(0, tile - h), max(0, tile - w)
        if ph or pw:
            images = np.pad(images, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
        H, W = images.shape[2:]
        ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
        if len(ys) == len(xs) == 1:  # one tile per image: nothing to blend (the weights would all be 1)
            out = self.predict(images, batch_size=batch_size, desc=desc, show_progress=show_progress)
            if isinstance(out, dict):
                out = out[self.output_names[0]]
            return out[:, :, :h, :w]
        win = blend_window(tile, overlap)
        jobs = [(k, y, x) for k in range(n) for y in ys for x in xs]
        out = None
        weight = np.zeros((H, W), np.float32)
        for y in ys:
            for x in xs:
                weight[y : y + tile, x : x + tile] += win
        steps = range(0, len(jobs), batch_size)
        for i in progress(steps, desc=desc or self.card.name, unit="batch") if show_progress else steps:
            chunk = jobs[i : i + batch_size]
            batch = np.stack([images[k, :, y : y + tile, x : x + tile] for k, y, x in chunk])
            pred = self(batch)
            if isinstance(pred, dict):
                pred = pred[self.output_names[0]]
            if out is None:
                out = np.zeros((n, pred.shape[1], H, W), np.float32)
            for (k, y, x), p in zip(chunk, pred):
                out[k, :, y : y + tile, x : x + tile] += p * win
        out /= weight
        return out[:, :, :h, :w]


def default_threads() -> int:
    """Threads for onnxruntime from ``MLTEM_THREADS`` (0 = all cores)."""
    try:
        return int(os.environ.get("MLTEM_THREADS", "0"))
    except ValueError:
        return 0
