"""How frames are fed to the fronts network (shared by training and inference; numpy only)."""
from __future__ import annotations

import numpy as np

__all__ = ["network_input", "NETWORK_NORMALISATION"]

NETWORK_NORMALISATION = (
    "2 channels: (frame, reference frame 0), both scaled by the reference frame's 1st and 99th "
    "percentiles: (x - p1) / (p99 - p1)"
)


def network_input(frames, reference) -> np.ndarray:
    """Stack frames with the movie's first frame as the network's two input channels.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) or (y, x) intensities.
    reference : numpy.ndarray
        (y, x) reference frame (the movie's first frame: mostly unreacted).

    Returns
    -------
    numpy.ndarray
        (frame, 2, y, x) float32: each frame and the reference, scaled by the reference's
        1st and 99th percentiles.
    """
    frames = np.asarray(frames, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or reference.shape != frames.shape[1:]:
        raise ValueError(f"frames must be (frame, y, x) and reference (y, x) of the same size, got "
                         f"{frames.shape} and {reference.shape}")
    lo, hi = np.percentile(reference, [1, 99])
    scale = np.float32(1.0 / max(float(hi - lo), 1e-6))
    out = np.empty((len(frames), 2, *frames.shape[1:]), np.float32)
    np.multiply(frames - np.float32(lo), scale, out=out[:, 0])
    out[:, 1] = (reference - np.float32(lo)) * scale
    return out
