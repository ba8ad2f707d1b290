"""Session-wide (shared) calibration: all patterns of one acquisition series share the camera
length, so their calibration error is common.

A single pattern with a calibration known to +-3 % cannot separate phases whose lattices
differ by less than that (LiCoO2 / NMC111, LiF [111] / layered [001] nets). The series can:
the confidently indexed, unambiguous patterns each refine the calibration factor; their
robust average (median, spread from the MAD) is the series' factor, and every pattern is
then matched again with the calibration held within a narrow window around it.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from mltem.diffraction._index import IndexResult, Prepared, TemplateBank, mark_unmatched, match_templates

__all__ = ["SharedCalibration", "shared_calibration", "index_prepared", "index_batch", "index_with_shared",
           "index_series"]

log = logging.getLogger(__name__)


@dataclass
class SharedCalibration:
    """The calibration factor common to a series of patterns.

    Attributes
    ----------
    scale : float or None
        True 1/nm per pixel = file value * scale; None when too few patterns were
        confidently indexed (the series is then indexed pattern by pattern).
    spread : float
        Robust standard deviation (1.4826 x MAD) of the per-pattern factors used.
    error : float
        Standard error of ``scale`` (1.2533 x spread / sqrt(n_used), that of a median).
    n_used : int
        Patterns whose factors were averaged.
    n_candidates : int
        Patterns that passed the reliability (and reference-phase) cut, before outlier rejection.
    window : float
        Half-width (fraction) of the calibration window of the second pass.
    sigma : float
        Width (fraction) of the Gaussian calibration prior of the second pass: the spread,
        at least ``min_sigma`` of :func:`shared_calibration`.
    reference_phase : str or None
        Only patterns indexed as this phase (a known standard in the series) were used.
    note : str
        How the factor was obtained, or why it was not.
    """

    scale: float | None
    spread: float
    error: float
    n_used: int
    n_candidates: int
    window: float
    sigma: float
    reference_phase: str | None
    note: str

    def as_dict(self) -> dict:
        """Plain data, with the factor also as a change in per cent."""
        d = asdict(self)
        d["percent_change"] = None if self.scale is None else 100.0 * (self.scale - 1.0)
        d["spread_percent"] = 100.0 * self.spread
        d["error_percent"] = 100.0 * self.error
        return d


def shared_calibration(results, *, min_reliability: float = 0.2, min_patterns: int = 3,
                       reference_phase: str | None = None, window: float = 0.005,
                       reject_sigma: float = 3.0, min_sigma: float = 0.0015) -> SharedCalibration:
    """Robust common calibration factor of a series from its per-pattern answers.

    Parameters
    ----------
    results : sequence of IndexResult
        Per-pattern answers (free calibration search), e.g. from :func:`index_prepared`.
    min_reliability : float
        Only answers at least this reliable are used (ambiguous twins score near 0).
    min_patterns : int
        Fewer usable answers than this give ``scale=None``.
    reference_phase : str, optional
        Use only the patterns indexed as this phase (a known standard in the series).
    window : float
        Recorded as the window of the second pass (fraction).
    reject_sigma : float
        Factors further than this many robust standard deviations (at least 0.2 %) from
        the median are rejected before the final median.
    min_sigma : float
        Smallest width of the calibration prior of the second pass (the per-pattern
        factors scatter by about 0.2 % from centre and distortion errors).

    Returns
    -------
    SharedCalibration
    """
    if min_patterns < 1:
        raise ValueError(f"min_patterns must be >= 1, got {min_patterns}")
    if not 0 <= window < 0.5:
        raise ValueError(f"window must lie in [0, 0.5), got {window}")
    s = np.array([r.scale for r in results
                  if r.phase != "none" and r.reliability >= min_reliability
                  and (reference_phase is None or r.phase == reference_phase)], float)
    n_cand = len(s)
    what = f"patterns indexed as {reference_phase}" if reference_phase else "patterns"
    if n_cand < min_patterns:
        return SharedCalibration(None, float("nan"), float("nan"), n_cand, n_cand, window, float("nan"), reference_phase,
                                 f"only {n_cand} {what} with reliability >= {min_reliability} (need {min_patterns}); "
                                 "calibration refined pattern by pattern")
    ls = np.log(s)
    med = np.median(ls)
    sig = 1.4826 * np.median(np.abs(ls - med))
    keep = np.abs(ls - med) <= reject_sigma * max(sig, 0.002)
    ls = ls[keep]
    med = float(np.median(ls))
    sig = float(1.4826 * np.median(np.abs(ls - med)))
    scale = float(np.exp(med))
    err = 1.2533 * sig / np.sqrt(len(ls))
    note = (f"median of {len(ls)} {what} with reliability >= {min_reliability} "
            f"({n_cand - len(ls)} outliers rejected); second pass within +-{100 * window:.2g} %")
    log.debug("shared calibration factor %.4f (spread %.2f %%, %d patterns)", scale, 100 * sig, len(ls))
    return SharedCalibration(scale, sig, float(err), int(len(ls)), n_cand, window, max(sig, min_sigma), reference_phase,
                             note)


def index_prepared(prep: Prepared, bank: TemplateBank, *, indexer=None, scale: float | None = None,
                   scale_window: float | None = None, scale_sigma: float | None = None,
                   proposals=None) -> tuple[IndexResult, float]:
    """Index one prepared pattern, by template matching alone or with a network's proposals.

    Parameters
    ----------
    prep : Prepared
    bank : TemplateBank
    indexer : NetworkIndexer, optional
        None for classical matching over every template.
    scale, scale_window, scale_sigma : float, optional
        Known calibration factor, the window around it and the width of its prior (see
        :func:`match_templates`).
    proposals : tuple, optional
        The network's proposals for this pattern if already computed (see
        :meth:`NetworkIndexer.index`).

    Returns
    -------
    (IndexResult, float)
        The answer and the network's confidence (NaN for classical matching).
    """
    if indexer is not None:
        return indexer.index(prep, scale=scale, scale_window=scale_window, scale_sigma=scale_sigma, proposals=proposals)
    res = match_templates(prep, bank, scale=scale, scale_window=scale_window, scale_sigma=scale_sigma)
    return mark_unmatched(res, prep, bank.settings), float("nan")


def index_batch(preps, bank: TemplateBank, *, indexer=None, mapper=map):
    """Free-calibration answers for a batch of prepared patterns, the network run once on all.

    Parameters
    ----------
    preps : sequence of Prepared
    bank : TemplateBank
    indexer : NetworkIndexer, optional
        None for classical matching over every template.
    mapper : callable
        ``map`` or a thread pool's ``map`` for the per-pattern matching.

    Returns
    -------
    answers : list of (IndexResult, float)
        As :func:`index_prepared`.
    proposals : list
        Each pattern's network proposals (templates, probabilities, confidence), or None.
    """
    preps = list(preps)
    props = [None] * len(preps)
    if indexer is not None and preps:
        top, prob, conf = indexer.propose(preps)
        props = [(top[i], prob[i], float(conf[i])) for i in range(len(preps))]
    answers = list(mapper(lambda j: index_prepared(preps[j], bank, indexer=indexer, proposals=props[j]),
                          range(len(preps))))
    return answers, props


def index_with_shared(prep: Prepared, bank: TemplateBank, shared: SharedCalibration | None, *, indexer=None,
                      keep_ratio: float = 0.8, use_prior: bool = True, proposals=None, first=None) -> tuple[IndexResult, float, str]:
    """Index one pattern of a series with the series' calibration factor.

    Parameters
    ----------
    prep : Prepared
    bank : TemplateBank
    shared : SharedCalibration or None
        From :func:`shared_calibration`; None or ``shared.scale is None`` gives the free
        (per-pattern) answer.
    indexer : NetworkIndexer, optional
    keep_ratio : float
        The free answer is kept when the best score within the shared window is below
        ``keep_ratio`` times the free score (the pattern does not share the calibration,
        e.g. it was taken at another camera length).
    use_prior : bool
        Weight the window by the Gaussian calibration prior (``shared.sigma``), which
        breaks ties between templates whose nets differ by less than the window.
    proposals : tuple, optional
        The network's proposals for this pattern, if already computed.
    first : (IndexResult, float), optional
        The free answer, if already computed.

    Returns
    -------
    (IndexResult, float, str)
        The answer, the network confidence (NaN for classical) and "shared" or
        "per-pattern" (which calibration the answer used).
    """
    if indexer is not None and proposals is None:
        top, prob, conf = indexer.propose([prep])
        proposals = (top[0], prob[0], float(conf[0]))
    if first is None:
        first = index_prepared(prep, bank, indexer=indexer, proposals=proposals)
    r0, c0 = first
    if shared is None or shared.scale is None:
        return r0, c0, "per-pattern"
    r, _ = index_prepared(prep, bank, indexer=indexer, scale=shared.scale, scale_window=shared.window,
                          scale_sigma=shared.sigma if use_prior else None, proposals=proposals)
    if r0.phase != "none" and r.score < keep_ratio * r0.score:
        return r0, c0, "per-pattern"
    return r, c0, "shared"


def index_series(preps, bank: TemplateBank, *, indexer=None, calibration: str = "shared", window: float = 0.005,
                 min_reliability: float = 0.2, min_patterns: int = 3, reference_phase: str | None = None,
                 keep_ratio: float = 0.8, use_prior: bool = True):
    """Index a series of patterns that share one camera length.

    Parameters
    ----------
    preps : sequence of Prepared
        The patterns (:func:`mltem.diffraction.prepare_pattern`), each with its file's
        calibration.
    bank : TemplateBank
    indexer : NetworkIndexer, optional
        Network proposals (None: classical matching over every template).
    calibration : {"shared", "per-pattern"}
        "shared": two passes, the second with the calibration held within ``window`` of
        the series' factor (:func:`shared_calibration`); "per-pattern": one pass, each
        pattern's calibration searched within ``settings.scale_range``.
    window : float
        Half-width of the calibration window of the second pass (0.005 = +-0.5 %).
    min_reliability, min_patterns, reference_phase
        See :func:`shared_calibration`.
    keep_ratio, use_prior
        See :func:`index_with_shared`.

    Returns
    -------
    results : list of IndexResult
    confidence : numpy.ndarray
        (n,) network confidence (NaN for classical matching).
    shared : SharedCalibration or None
        None for ``calibration="per-pattern"``.
    mode : list of str
        "shared" or "per-pattern" for each pattern.
    """
    if calibration not in ("shared", "per-pattern"):
        raise ValueError(f"calibration must be 'shared' or 'per-pattern', got {calibration!r}")
    preps = list(preps)
    first, props = index_batch(preps, bank, indexer=indexer)
    if calibration == "per-pattern":
        return [r for r, _ in first], np.array([c for _, c in first]), None, ["per-pattern"] * len(preps)
    shared = shared_calibration([r for r, _ in first], min_reliability=min_reliability, min_patterns=min_patterns,
                                reference_phase=reference_phase, window=window)
    out = [index_with_shared(p, bank, shared, indexer=indexer, keep_ratio=keep_ratio, use_prior=use_prior,
                             proposals=q, first=f)
           for p, q, f in zip(preps, props, first)]
    return [o[0] for o in out], np.array([o[1] for o in out]), shared, [o[2] for o in out]
