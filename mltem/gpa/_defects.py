"""Dislocation cores from geometric phases: where a phase winds by 2 pi.

Around a dislocation with Burgers vector ``b`` the geometric phase ``P_g = -2 pi g.u``
changes by ``-2 pi g.b`` on a closed circuit. The winding of each phase is summed over
every 2 x 2 pixel plaquette; plaquettes with a non-zero winding that lie close together
are grouped, and a group with a non-zero net winding is one dislocation (noise makes
pairs of opposite windings, which cancel).
"""
from __future__ import annotations

import numpy as np

__all__ = ["find_dislocations"]


def _wrap(a):
    return a - 2 * np.pi * np.rint(a / (2 * np.pi))


def _winding(phase) -> np.ndarray:
    """Winding number (integer) of ``phase`` around each 2 x 2 plaquette, shape (y-1, x-1)."""
    p = np.asarray(phase, dtype=np.float64)
    s = (
        _wrap(p[:-1, 1:] - p[:-1, :-1])
        + _wrap(p[1:, 1:] - p[:-1, 1:])
        + _wrap(p[1:, :-1] - p[1:, 1:])
        + _wrap(p[:-1, :-1] - p[1:, :-1])
    )
    return np.rint(s / (2 * np.pi)).astype(np.int8)


def find_dislocations(phases, g_vectors, *, margin_px: int = 0, group_px: float = 5.0) -> list[dict]:
    """Locate dislocation cores and their Burgers vectors from two geometric phases.

    Parameters
    ----------
    phases : numpy.ndarray
        Shape (2, y, x): geometric phases (rad, wrapped) of the reflections ``g_vectors``,
        e.g. ``GPAResult.phases``.
    g_vectors : array_like
        Shape (2, 2): rows ``(g_y, g_x)`` in 1/px.
    margin_px : int
        Ignore this many pixels at each edge (the phases are unreliable there; use
        ``GPAResult.margin_px``).
    group_px : float
        Windings closer than this (px) belong to one core.

    Returns
    -------
    list of dict
        One dict per core: ``y``, ``x`` (px, position of the core), ``winding``
        (the two integer windings ``n1, n2``) and ``burgers_px`` ``(b_y, b_x)`` with
        ``g_k . b = -n_k`` for a circuit x, then y (counter-clockwise as shown with
        rows going down).
    """
    phases = np.asarray(phases)
    if phases.ndim != 3 or phases.shape[0] != 2:
        raise ValueError(f"phases must have shape (2, y, x), got {phases.shape}")
    g = np.asarray(g_vectors, dtype=float)
    if g.shape != (2, 2):
        raise ValueError(f"g_vectors must have shape (2, 2), got {g.shape}")
    from scipy import ndimage

    w = np.stack([_winding(p) for p in phases])  # (2, y-1, x-1) at (y+0.5, x+0.5)
    m = int(margin_px)
    if m > 0:
        w[:, :m, :] = 0
        w[:, -m:, :] = 0
        w[:, :, :m] = 0
        w[:, :, -m:] = 0
    hit = (w != 0).any(axis=0)
    if not hit.any():
        return []
    r = max(1, int(np.ceil(group_px)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    labels, nlab = ndimage.label(ndimage.binary_dilation(hit, structure=(yy**2 + xx**2) <= r * r))
    a = np.linalg.inv(g[:, ::-1])  # columns a1, a2 as (x, y)
    out = []
    for lab in range(1, nlab + 1):
        sel = (labels == lab) & hit
        n = [int(w[k][sel].sum()) for k in range(2)]
        if n == [0, 0]:
            continue
        ys, xs = np.nonzero(sel)
        weight = np.abs(w[:, sel]).sum(axis=0).astype(float)
        bx, by = -(a[:, 0] * n[0] + a[:, 1] * n[1])
        out.append(
            {
                "y": float(np.average(ys, weights=weight) + 0.5),
                "x": float(np.average(xs, weights=weight) + 0.5),
                "winding": (n[0], n[1]),
                "burgers_px": (float(by), float(bx)),
            }
        )
    return out
