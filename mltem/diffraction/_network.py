"""Network-proposed indexing: an ONNX classifier proposes the likely templates, the
classical log-polar template matching verifies them (orientation and calibration).

Inference needs only numpy and onnxruntime. The network sees the same log-polar
pattern as the template matching (:func:`mltem.diffraction.prepare_pattern`), pooled to
a coarser grid (:func:`network_input`); it answers "which (phase, zone) templates", and
the refinement answers "at what in-plane angle and calibration, and how well".
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from mltem._errors import MltemError
from mltem.diffraction._index import IndexResult, IndexSettings, Prepared, TemplateBank, mark_unmatched, match_templates

__all__ = ["INPUT_POOL", "NetworkIndexer", "network_input", "phase_signature", "model_for_phases", "softmax"]

log = logging.getLogger(__name__)

#: (rows, columns) pooled into one network input pixel from the log-polar grid of
#: :class:`IndexSettings` (256 x 360 -> 64 x 120: 2.8 % in |g| by 3 degrees).
INPUT_POOL = (4, 3)
#: IndexSettings fields that must agree between a model and the template bank.
_GRID_FIELDS = ("g_min_inv_nm", "g_max_inv_nm", "n_r", "n_theta")
NORMALISATION = ("mltem.diffraction.network_input: prepare_pattern's log-polar pattern (centred, radial background "
                 "removed, sqrt counts, unit RMS), block-max pooled 4 x 3 (ln|g| x azimuth), log1p(2 x) -> channel 0; "
                 "fraction of valid (unmasked, on-detector) pixels -> channel 1")


def network_input(prep: Prepared, *, pool=INPUT_POOL) -> np.ndarray:
    """The network's input for a prepared pattern.

    Parameters
    ----------
    prep : Prepared
        From :func:`mltem.diffraction.prepare_pattern` (log-polar grid: rows ln|g|,
        columns azimuth over 360 degrees).
    pool : (int, int)
        Block size pooled into one input pixel (rows, columns); must divide the grid.

    Returns
    -------
    numpy.ndarray
        (2, n_r / pool[0], n_theta / pool[1]) float32: channel 0 is log1p(2 x) of the
        block maximum of the pattern (x >= 0, in units of its RMS), channel 1 the fraction
        of valid pixels in the block. A calibration error of a few per cent is a shift of
        about one row; an in-plane rotation a circular shift of the columns.
    """
    p = np.asarray(prep.polar, np.float32)
    v = np.asarray(prep.valid, np.float32)
    pr, pt = int(pool[0]), int(pool[1])
    nr, nt = p.shape
    if nr % pr or nt % pt:
        raise ValueError(f"pool {pool} must divide the log-polar grid {p.shape}")
    # block reductions one axis at a time over contiguous memory (the same values, faster)
    x = p.reshape(nr // pr, pr, nt).max(axis=1).reshape(nr // pr, nt // pt, pt).max(axis=2)
    x = np.log1p(2.0 * np.clip(x, 0, None))
    m = v.reshape(nr // pr, pr, nt).sum(axis=1).reshape(nr // pr, nt // pt, pt).sum(axis=2) / (pr * pt)
    return np.stack([x, m]).astype(np.float32)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def phase_signature(phase) -> dict:
    """What identifies a phase in a model card: name, formula, space group and cell lengths (nm)."""
    return {"name": phase.name, "formula": phase.formula, "space_group": phase.space_group,
            "cell_nm": [round(float(v), 5) for v in np.linalg.norm(phase.direct_matrix_nm, axis=1)]}


def _same_phase(sig: dict, phase, tol: float = 0.005) -> bool:
    if sig.get("name") != phase.name or sig.get("space_group") != phase.space_group:
        return False
    cell = np.linalg.norm(phase.direct_matrix_nm, axis=1)
    ref = np.asarray(sig.get("cell_nm", [np.nan] * 3), float)
    # a CIF may use another setting of the same cell: compare the sorted lengths
    return bool(np.all(np.abs(np.sort(cell) / np.sort(ref) - 1) <= tol))


def _covers(card, phases) -> list:
    """Names of the ``phases`` the card's model was NOT trained on."""
    sigs = card.extra.get("phases", []) if isinstance(card.extra, dict) else []
    return [p.name for p in phases if not any(_same_phase(s, p) for s in sigs)]


def model_for_phases(phases, *, name: str | None = None):
    """The index model that knows all ``phases`` (the one with the fewest extra phases).

    Parameters
    ----------
    phases : sequence of Phase
    name : str, optional
        Use this model (registry name or path); it must know every phase.

    Returns
    -------
    (ModelCard or None, str)
        The verified card (None if no model knows all phases) and a note saying why.

    Raises
    ------
    MltemError
        ``name`` given but missing, not an index model, or not trained on every phase.
    """
    from mltem.registry import find_model, list_models

    if name is not None:
        card = find_model(name, task="index")
        missing = _covers(card, phases)
        if missing:
            raise MltemError(f"model '{card.name}' was not trained on {', '.join(missing)}; train one with "
                             f"`mltem train index --phase ...` or use --method classical")
        return card, f"model '{card.name}'"
    best, best_n = None, None
    for card in list_models():
        if card.task != "index":
            continue
        if not _covers(card, phases):
            n = len(card.extra.get("phases", []))
            if best is None or n < best_n:
                best, best_n = card, n
    if best is None:
        known = sorted({s["name"] for c in list_models() if c.task == "index" for s in c.extra.get("phases", [])})
        return None, (f"no index model was trained on all of {', '.join(p.name for p in phases)} (models know: "
                      f"{', '.join(known) or 'none'})")
    from mltem.registry import verify

    return verify(best), f"model '{best.name}'"


class NetworkIndexer:
    """Index patterns with an ONNX model's top-k proposals refined by template matching.

    Parameters
    ----------
    card : ModelCard or str
        An index model (see :func:`model_for_phases`).
    bank : TemplateBank
        Templates of the requested phases (a subset of the model's is fine). Templates
        the model does not know (e.g. a larger ``max_zones``) are always refined.
    top_k : int
        Templates proposed per pattern.
    threads : int, optional
        onnxruntime threads.

    Attributes
    ----------
    class_to_template : numpy.ndarray
        (n_classes,) bank index of each model class, -1 for classes of other phases.
    always : numpy.ndarray
        Bank templates the model has no class for.
    """

    def __init__(self, card, bank: TemplateBank, *, top_k: int = 5, threads: int | None = None):
        from mltem.infer import OnnxModel

        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.model = OnnxModel(card, task="index", threads=threads)
        self.card = self.model.card
        extra = self.card.extra or {}
        grid = extra.get("settings", {})
        for f in _GRID_FIELDS:
            if f in grid and not np.isclose(float(grid[f]), float(getattr(bank.settings, f))):
                raise MltemError(f"model '{self.card.name}' was trained on a log-polar grid with {f}={grid[f]}, "
                                 f"the template bank uses {getattr(bank.settings, f)}")
        self.pool = tuple(extra.get("input_pool", INPUT_POOL))
        self.bank, self.top_k = bank, int(top_k)
        lookup = {lab: i for i, lab in enumerate(bank.labels)}
        self.class_to_template = np.array([lookup.get(c, -1) for c in self.card.classes], int)
        if not (self.class_to_template >= 0).any():
            raise MltemError(f"model '{self.card.name}' has no class for any template of these phases")
        known = set(self.class_to_template[self.class_to_template >= 0].tolist())
        self.always = np.array([t for t in range(len(bank)) if t not in known], int)

    def propose(self, preps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k templates of a batch of prepared patterns.

        Returns
        -------
        templates : numpy.ndarray
            (n, k) bank indices, most probable first.
        prob : numpy.ndarray
            (n, k) their probabilities (softmax over the classes of the bank's phases).
        confidence : numpy.ndarray
            (n,) probability of the top template.
        """
        x = np.stack([network_input(p, pool=self.pool) for p in preps])
        logits = np.asarray(self.model(x), np.float64)
        ok = self.class_to_template >= 0
        logits = np.where(ok[None, :], logits, -np.inf)
        prob = softmax(logits, axis=1)
        k = min(self.top_k, int(ok.sum()))
        top = np.argsort(-prob, axis=1, kind="stable")[:, :k]
        p_top = np.take_along_axis(prob, top, 1)
        return self.class_to_template[top], p_top, p_top[:, 0]

    def index(self, prep: Prepared, *, return_proposals: bool = False, scale: float | None = None,
              scale_window: float | None = None, scale_sigma: float | None = None, proposals=None):
        """Index one prepared pattern.

        The result's reliability is that of the refinement among the proposed templates
        times the square root of the network's probability of the answer (a pattern the
        network hesitates on is less reliable even if one proposal fits well).

        Parameters
        ----------
        prep : Prepared
        return_proposals : bool
            Also return the proposed templates (bank indices, most probable first).
        scale, scale_window, scale_sigma : float, optional
            Known calibration factor, the window searched around it and the width of
            its prior (see :func:`mltem.diffraction.match_templates`).
        proposals : (numpy.ndarray, numpy.ndarray, float), optional
            This pattern's row of :meth:`propose` (templates, probabilities, confidence),
            when the network already ran on it (e.g. in a batch).

        Returns
        -------
        (IndexResult, float) or (IndexResult, float, numpy.ndarray)
            The result, the network's confidence (its top probability) and, if asked,
            the proposals.
        """
        if proposals is None:
            templates, prob, conf = self.propose([prep])
            proposals = (templates[0], prob[0], float(conf[0]))
        top, prob, conf = proposals
        cands = np.concatenate([top, self.always])
        res = match_templates(prep, self.bank, templates=cands, scale=scale, scale_window=scale_window,
                              scale_sigma=scale_sigma)
        p = dict(zip(np.asarray(top).tolist(), np.asarray(prob).tolist()))
        if res.template in p:  # a template the network has no class for keeps the refinement's reliability
            res.reliability = float(res.reliability * np.sqrt(p[res.template]))
        mark_unmatched(res, prep, self.bank.settings)
        return (res, float(conf), top) if return_proposals else (res, float(conf))


def settings_dict(settings: IndexSettings) -> dict:
    """The settings as plain data (for model cards)."""
    return dataclasses.asdict(settings)
