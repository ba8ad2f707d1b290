"""Frame normalisation and neighbour stacking: the network's input, shared by training
and inference (numpy only)."""
from __future__ import annotations

import numpy as np

__all__ = ["evenly_spaced", "normalise_frames", "stack_neighbours", "NORMALISATION"]

NORMALISATION = (
    "per frame: (frame - median) / (99th - 1st percentile), clipped to [-3, 3]; "
    "channels: frames t-1, t, t+1 (edges repeat the first/last frame)"
)


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` of ``n`` frames, spread evenly from the first to the last."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def normalise_frames(frames: np.ndarray) -> np.ndarray:
    """Scale each frame robustly to unit range: ``(f - median) / (p99 - p1)``.

    Removes the dose, the camera gain and frame-to-frame flicker; hot pixels and
    cosmic-ray spikes are clipped at +-3.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) or (y, x) intensities (any real dtype).

    Returns
    -------
    numpy.ndarray
        float32 of the same shape.
    """
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim not in (2, 3):
        raise ValueError(f"frames must be (frame, y, x) or (y, x), got shape {f.shape}")
    single = f.ndim == 2
    f = f[None] if single else f
    if not np.isfinite(f).all():
        f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    step = max(1, int(np.sqrt(f.shape[1] * f.shape[2] / 65536)))  # percentiles on <= ~64k px
    sub = f[:, ::step, ::step].reshape(len(f), -1)
    lo, med, hi = np.percentile(sub, [1, 50, 99], axis=1)
    scale = np.maximum(hi - lo, 1e-6 * np.maximum(np.abs(med), 1.0))
    out = (f - med[:, None, None].astype(np.float32)) / scale[:, None, None].astype(np.float32)
    np.clip(out, -3, 3, out=out)
    return out[0] if single else out


def stack_neighbours(frames: np.ndarray, *, neighbours: int = 1, before=None, after=None) -> np.ndarray:
    """Network input: each frame with its ``neighbours`` previous and next frames as channels.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) normalised frames.
    neighbours : int
        Frames on each side (channels = 2 * neighbours + 1).
    before, after : numpy.ndarray, optional
        (k, y, x) frames just before/after this block (streaming); where missing, the
        first/last frame is repeated.

    Returns
    -------
    numpy.ndarray
        (frame, 2 * neighbours + 1, y, x) float32, channel ``neighbours`` is the frame.
    """
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 3:
        raise ValueError(f"frames must be (frame, y, x), got shape {f.shape}")
    if neighbours < 0:
        raise ValueError(f"neighbours must be >= 0, got {neighbours}")
    k = neighbours
    pre = np.asarray(before, np.float32)[-k:] if before is not None and k else np.zeros((0, *f.shape[1:]), np.float32)
    post = np.asarray(after, np.float32)[:k] if after is not None and k else np.zeros((0, *f.shape[1:]), np.float32)
    pre = np.concatenate([np.repeat(f[:1] if not len(pre) else pre[:1], k - len(pre), 0), pre]) if k else pre
    post = np.concatenate([post, np.repeat(f[-1:] if not len(post) else post[-1:], k - len(post), 0)]) if k else post
    ext = np.concatenate([pre, f, post])
    n = len(f)
    return np.stack([ext[j : j + n] for j in range(2 * k + 1)], axis=1)
