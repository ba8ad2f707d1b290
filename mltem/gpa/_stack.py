"""GPA of stacks and movies: one reference for all frames, drift registration, streaming.

The plan (reflections, masks, reference g vectors) is made once from the reference
frame, so strain is measured against the same lattice in every frame. Frames are
processed one at a time: memory holds one input frame and one output frame, whatever the
length of the movie (:func:`iter_gpa`), and a dask-backed stack becomes a dask array of
strain maps computed chunk by chunk (:func:`lazy_gpa`).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import uuid

import numpy as np

from mltem.gpa._core import GPAPlan, GPAResult, make_plan

__all__ = ["iter_gpa", "gpa_stack", "lazy_gpa"]


def iter_gpa(frames: Iterable, plan: GPAPlan, *, register: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Strain maps of each frame, one frame at a time.

    Parameters
    ----------
    frames : iterable of numpy.ndarray
        Frames (y, x) of the plan's shape (a numpy or dask stack, a generator, ...).
    plan : GPAPlan
        From :func:`make_plan` on the reference frame (with ``register=True`` to
        register the frames to it).
    register : bool
        Register each frame to the plan's reference frame (needs a plan made with
        ``register=True``); the maps are then in the reference frame's coordinates.

    Yields
    ------
    strain : numpy.ndarray
        (4, y, x): exx, eyy, exy, rotation of the frame.
    drift : numpy.ndarray
        (2,): ``(dy, dx)`` drift of the frame in px (zeros without registration).
    """
    if register and plan._reg_ref is None:
        raise ValueError("the plan has no registration reference: make it with register=True")
    for frame in frames:
        frame = np.asarray(frame)
        drift = plan.drift(frame) if register else np.zeros(2)
        shift = drift if register and np.any(drift) else None
        yield plan.strain(frame, shift=shift), drift


def gpa_stack(
    stack,
    *,
    g_vectors=None,
    mask: str = "gaussian",
    mask_size: float | None = None,
    reference="auto",
    reference_frame: int = 0,
    register: bool = True,
    definition: str = "lattice",
    angle_deg: float = 0.0,
    dtype=None,
    workers: int | None = None,
    progress: bool = False,
) -> GPAResult:
    """GPA of every frame of a stack with one reference (region and g vectors).

    Parameters
    ----------
    stack : array_like
        Frames (frame, y, x): numpy, dask or anything indexable by frame.
    reference_frame : int
        Frame whose reference region fixes the g vectors and to which the other frames
        are registered.
    register : bool
        Measure the drift of every frame (on frequencies below the lattice) and return
        the maps in the reference frame's coordinates; pixels without data are NaN.
    progress : bool
        Show a progress bar over frames.
    g_vectors, mask, mask_size, reference, definition, angle_deg, dtype, workers
        As for :func:`mltem.gpa.gpa`.

    Returns
    -------
    GPAResult
        ``strain`` of shape (frame, 4, y, x) and ``drift_px`` of shape (frame, 2).
    """
    if np.ndim(stack) != 3:
        raise ValueError(f"stack must be 3D (frame, y, x), got shape {np.shape(stack)}")
    nf = len(stack)
    if not 0 <= reference_frame < nf:
        raise ValueError(f"reference_frame {reference_frame} is out of range for {nf} frames")
    ref = np.asarray(stack[reference_frame])
    plan = make_plan(
        ref,
        g_vectors=g_vectors,
        mask=mask,
        mask_size=mask_size,
        reference=reference,
        definition=definition,
        angle_deg=angle_deg,
        register=register,
        dtype=dtype,
        workers=workers,
    )
    out = np.empty((nf, 4, *ref.shape), dtype=plan.dtype)
    drift = np.zeros((nf, 2))
    frames = (stack[k] for k in range(nf))
    it = iter_gpa(frames, plan, register=register)
    if progress:
        from mltem._progress import progress as bar

        it = bar(it, total=nf, desc="GPA", unit="frame")
    for k, (s, d) in enumerate(it):
        out[k] = s
        drift[k] = d
    return plan.result(out, drift_px=drift)


def lazy_gpa(stack, plan: GPAPlan, *, register: bool = True):
    """A dask array of strain maps, computed frame by frame when it is stored or computed.

    Parameters
    ----------
    stack : dask.array.Array
        Frames (frame, y, x).
    plan : GPAPlan
        From :func:`make_plan` on the reference frame.
    register : bool
        Register frames to the plan's reference frame.

    Returns
    -------
    strain : dask.array.Array
        (frame, 4, y, x) in the plan's dtype, one frame per chunk.
    drift : numpy.ndarray
        (frame, 2): filled with each frame's drift (px) as its chunk is computed.
    """
    import dask.array as da

    if register and plan._reg_ref is None:
        raise ValueError("the plan has no registration reference: make it with register=True")
    stack = da.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"stack must be 3D (frame, y, x), got shape {stack.shape}")
    stack = stack.rechunk((1, -1, -1))
    nf, m, n = stack.shape
    drift = np.zeros((nf, 2))

    def one(block, block_info=None):
        k = block_info[0]["chunk-location"][0]
        frame = np.asarray(block[0])
        d = plan.drift(frame) if register else np.zeros(2)
        drift[k] = d
        return plan.strain(frame, shift=d if register and np.any(d) else None)[None]

    out = da.map_blocks(
        one,
        stack,
        dtype=plan.dtype,
        chunks=((1,) * nf, (4,), (m,), (n,)),
        new_axis=1,
        name="mltem-gpa-" + uuid.uuid4().hex,
    )
    return out, drift
