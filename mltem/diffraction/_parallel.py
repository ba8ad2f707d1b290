"""Pattern preparation in worker processes.

Most of the time of indexing goes into :func:`mltem.diffraction.prepare_pattern` (centre,
background, spots, log-polar resampling). Its scipy.ndimage steps hold Python's global
interpreter lock, so threads barely overlap them; worker processes do.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

from mltem.diffraction._index import IndexSettings, Prepared, prepare_pattern

__all__ = ["PreparePool", "default_jobs"]


def default_jobs() -> int:
    """The CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _prepare(image, pixel_size_inv_nm, settings, centre):
    return prepare_pattern(image, pixel_size_inv_nm, settings, centre=centre)


def _worker_init() -> None:
    # one BLAS/OpenMP thread per worker: the workers themselves are the parallelism
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


class PreparePool:
    """Prepares patterns with ``jobs`` worker processes (in the calling process for 1).

    Use as a context manager::

        with PreparePool(jobs=2) as pool:
            preps = pool.prepare(images, pixel_sizes, settings)

    Parameters
    ----------
    jobs : int, optional
        Worker processes; default :func:`default_jobs`. 1 prepares in this process.
    """

    def __init__(self, jobs: int | None = None):
        jobs = default_jobs() if jobs is None else int(jobs)
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self._ex = None
        if jobs > 1:
            # fork starts workers in milliseconds and shares the loaded modules; spawn elsewhere
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._ex = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                                           initializer=_worker_init)

    def prepare(self, images, pixel_sizes, settings: IndexSettings | None = None, *, centres=None) -> list[Prepared]:
        """:func:`mltem.diffraction.prepare_pattern` of each image, in order.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            (y, x) counts.
        pixel_sizes : sequence of float
            Each image's calibration, 1/nm per pixel.
        settings : IndexSettings, optional
        centres : sequence of (float, float) or None, optional
            Known centres (None: found from the pattern).

        Returns
        -------
        list of Prepared
        """
        return self.submit(images, pixel_sizes, settings, centres=centres)()

    def submit(self, images, pixel_sizes, settings: IndexSettings | None = None, *, centres=None):
        """Start preparing the images in the workers and return at once.

        Parameters are those of :meth:`prepare`. Returns a function that waits for the
        workers and returns the list of :class:`Prepared`: the caller can match one
        batch while the workers prepare the next.
        """
        images = list(images)
        pixel_sizes = list(pixel_sizes)
        if len(pixel_sizes) != len(images):
            raise ValueError(f"{len(images)} images but {len(pixel_sizes)} pixel sizes")
        centres = [None] * len(images) if centres is None else list(centres)
        args = (images, pixel_sizes, repeat(settings), centres)
        if self._ex is None or len(images) < 2:
            done = list(map(_prepare, *args))
            return lambda: done
        chunk = max(1, len(images) // (4 * self.jobs))
        pending = self._ex.map(_prepare, *args, chunksize=chunk)
        return lambda: list(pending)

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown()
            self._ex = None

    def __enter__(self) -> "PreparePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
