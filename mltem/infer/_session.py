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


@functools.lru_cache(maxsize=16)
def _cached_session(path: str, sha256: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def session(card: ModelCard, *, threads: int = 0):
    """An onnxruntime session for a verified card, cached per (file, sha256, threads)."""
    try:
        return _cached_session(str(card.path.resolve()), card.sha256, int(threads))
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

    def predict(self, x: np.ndarray, *, batch_size: int = 32, desc: str = ""):
        """Run ``x`` (N, ...) in batches, with a progress bar; outputs are concatenated."""
        x = np.asarray(x)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        outs = []
        for i in progress(range(0, len(x), batch_size), desc=desc or self.card.name, unit="batch"):
            outs.append(self(x[i : i + batch_size]))
        if not outs:
            raise MltemError("nothing to run: the input is empty")
        if isinstance(outs[0], dict):
            return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        return np.concatenate(outs)

    def predict_tiled(
        self,
        images: np.ndarray,
        *,
        tile: int = 256,
        overlap: int = 32,
        batch_size: int = 8,
        multiple: int = 1,
        desc: str = "",
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
        win = blend_window(tile, overlap)
        jobs = [(k, y, x) for k in range(n) for y in ys for x in xs]
        out = None
        weight = np.zeros((H, W), np.float32)
        for y in ys:
            for x in xs:
                weight[y : y + tile, x : x + tile] += win
        for i in progress(range(0, len(jobs), batch_size), desc=desc or self.card.name, unit="batch"):
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
