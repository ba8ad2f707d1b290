"""Chunked access to stacks (movies, series, spectrum images), lazy or in memory."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["iter_chunks", "n_frames"]


def _flat(signal):
    """The data as (navigation..., signal...) with navigation flattened to one axis."""
    data = signal.data
    nsig = signal.axes_manager.signal_dimension
    sig_shape = data.shape[data.ndim - nsig :] if nsig else ()
    return data.reshape((-1, *sig_shape)) if data.ndim > nsig else data.reshape((1, *sig_shape))


def n_frames(signal) -> int:
    """Number of frames (navigation positions) of a signal; 1 for a single image/spectrum."""
    return int(_flat(signal).shape[0])


def iter_chunks(signal, *, chunk: int = 16, dtype=np.float32) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` with ``block`` of shape (n <= chunk, *signal_shape).

    Navigation axes are flattened in C order (frame index ``start + i``). Lazy signals are
    read one chunk at a time, so memory stays flat however long the stack is.

    Parameters
    ----------
    signal : hyperspy signal
    chunk : int
        Frames per block.
    dtype : numpy dtype
        Blocks are converted to this type.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    flat = _flat(signal)
    for start in range(0, flat.shape[0], chunk):
        block = flat[start : start + chunk]
        if hasattr(block, "compute"):
            block = block.compute()
        yield start, np.asarray(block, dtype=dtype)
