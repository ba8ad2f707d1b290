"""Indexing in worker processes.

Each worker prepares its share of a batch (:func:`mltem.diffraction.prepare_pattern`),
runs the network on it and matches the templates, so only the images go to the workers
and only the answers come back. The scipy.ndimage and numpy steps of the preparation
hold Python's global interpreter lock; threads barely overlap them, processes do.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from mltem.diffraction._index import IndexResult, Prepared, TemplateBank, prepare_pattern
from mltem.diffraction._session import SharedCalibration, index_batch, index_with_shared

__all__ = ["IndexPool", "Indexed", "default_jobs"]


def default_jobs() -> int:
    """The CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Indexed:
    """One pattern's answer from :class:`IndexPool`.

    Attributes
    ----------
    result : IndexResult
    confidence : float
        Network confidence (NaN for classical matching).
    mode : str
        "shared" or "per-pattern": which calibration the answer used.
    first : (IndexResult, float)
        The free-calibration answer and confidence.
    prep : Prepared or None
        The prepared pattern, when asked for (``keep=True``).
    proposals : tuple or None
        The network's proposals (templates, probabilities, confidence); None for
        classical matching.
    """

    result: IndexResult
    confidence: float
    mode: str
    first: tuple
    prep: Prepared | None = None
    proposals: tuple | None = None


_STATE: dict = {}


def _init_state(bank: TemplateBank, card, top_k: int) -> None:
    from mltem.diffraction._network import NetworkIndexer

    # one thread per worker: the workers themselves are the parallelism
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _STATE["bank"] = bank
    _STATE["indexer"] = None if card is None else NetworkIndexer(card, bank, top_k=top_k, threads=1)


def _index_chunk(images, pixel_sizes, centres, shared, keep, state=None) -> list[Indexed]:
    st = _STATE if state is None else state
    bank, indexer = st["bank"], st["indexer"]
    preps = [prepare_pattern(im, px, bank.settings, centre=c) for im, px, c in zip(images, pixel_sizes, centres)]
    firsts, props = index_batch(preps, bank, indexer=indexer)
    return [Indexed(*index_with_shared(prep, bank, shared, indexer=indexer, first=first, proposals=prop), first,
                    prep if keep else None, prop)
            for prep, first, prop in zip(preps, firsts, props)]


class IndexPool:
    """Indexes batches of patterns with ``jobs`` worker processes (in this process for 1).

    Use as a context manager::

        with IndexPool(bank, indexer=indexer, jobs=2) as pool:
            answers = pool.index(images, pixel_sizes)

    Parameters
    ----------
    bank : TemplateBank
    indexer : NetworkIndexer, optional
        The network proposing templates (used as is with one job; each worker opens its
        own one-thread session of its model); None for classical matching over every
        template.
    jobs : int, optional
        Worker processes; default :func:`default_jobs`.
    """

    def __init__(self, bank: TemplateBank, *, indexer=None, jobs: int | None = None):
        jobs = default_jobs() if jobs is None else int(jobs)
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.bank, self.jobs = bank, jobs
        self._local = {"bank": bank, "indexer": indexer}
        self._ex = None
        if jobs > 1:
            # fork starts workers in milliseconds and shares the loaded modules (Linux); spawn
            # elsewhere (fork is unsafe with macOS system libraries, absent on Windows)
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            card, top_k = (None, 0) if indexer is None else (indexer.card, indexer.top_k)
            self._ex = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                                           initializer=_init_state, initargs=(bank, card, top_k))

    def index(self, images, pixel_sizes, *, centres=None, shared: SharedCalibration | None = None,
              keep: bool = False) -> list[Indexed]:
        """Index patterns: prepare, network proposals, template matching.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            (y, x) counts.
        pixel_sizes : sequence of float
            Each image's calibration from its file, 1/nm per pixel.
        centres : sequence of (float, float) or None, optional
            Known direct-beam centres (None: found from the pattern).
        shared : SharedCalibration, optional
            A series' calibration (:func:`mltem.diffraction.shared_calibration`): the
            answers are matched again within its window (:func:`index_with_shared`).
        keep : bool
            Also return each prepared pattern (to match it again later).

        Returns
        -------
        list of Indexed
            In the order of ``images``.
        """
        return self.submit(images, pixel_sizes, centres=centres, shared=shared, keep=keep)()

    def submit(self, images, pixel_sizes, *, centres=None, shared: SharedCalibration | None = None,
               keep: bool = False):
        """Start :meth:`index` in the workers and return at once: a function that waits for
        and returns the answers (the caller can read the next batch meanwhile)."""
        images = list(images)
        pixel_sizes = list(pixel_sizes)
        if len(pixel_sizes) != len(images):
            raise ValueError(f"{len(images)} images but {len(pixel_sizes)} pixel sizes")
        centres = [None] * len(images) if centres is None else list(centres)
        if self._ex is None:
            done = _index_chunk(images, pixel_sizes, centres, shared, keep, self._local)
            return lambda: done
        # about two chunks per worker: balanced, and the network still sees batches
        size = max(1, math.ceil(len(images) / (2 * self.jobs)))
        futures = [self._ex.submit(_index_chunk, images[i:i + size], pixel_sizes[i:i + size], centres[i:i + size],
                                   shared, keep) for i in range(0, len(images), size)]
        return lambda: [a for f in futures for a in f.result()]

    def index_batches(self, batches, *, shared: SharedCalibration | None = None, keep: bool = False):
        """Index a stream of batches, the workers starting on the next batch before the
        answers of the current one are handed back.

        Parameters
        ----------
        batches : iterable of (images, pixel_sizes) or (images, pixel_sizes, centres)
            As the arguments of :meth:`index`; read lazily, one batch ahead.
        shared, keep
            As :meth:`index`, for every batch.

        Yields
        ------
        list of Indexed
            Each batch's answers, in order.
        """
        pending = None
        for b in batches:
            following = self.submit(b[0], b[1], centres=b[2] if len(b) > 2 else None, shared=shared, keep=keep)
            if pending is not None:
                yield pending()
            pending = following
        if pending is not None:
            yield pending()

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown()
            self._ex = None

    def __enter__(self) -> "IndexPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
