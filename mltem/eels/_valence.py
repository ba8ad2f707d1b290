"""Valence (oxidation state) of L2,3 spectra: network input, inference, reliability.

A network sees one spectrum resampled on a fixed grid *relative to the measured L3
onset* (``relative_grid``), background-subtracted and max-normalised
(:func:`model_input`); the same function prepares the simulated training spectra and
the user's data, so calibration offsets of several eV do not move the input, and the
network (trained with offset, dispersion, resolution, thickness and noise variation)
reads the shape: multiplet structure, L3/L2 ratio, L3-L2 spacing, crystal-field
splitting (as in Chatzidakis & Botton, Sci. Rep. 9, 2126 (2019),
:doi:`10.1038/s41598-019-38482-1`). It returns the fraction of each oxidation state
(softmax; mixed valence as in MnEdgeNet, Sci. Rep. 13 (2023)) and the mean valence is
the fraction-weighted sum of the valences.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mltem._errors import MltemError
from mltem.eels._background import subtract_background
from mltem.eels._edges import background_window, get_edge
from mltem.eels._whiteline import find_l3, white_line_ratio

__all__ = ["relative_grid", "coarse_shift", "model_input", "valence_from_fractions", "ValenceResult", "analyse_valence", "reliability_score", "default_model_name", "GRID_LENGTH"]

log = logging.getLogger(__name__)

GRID_LENGTH = 256
ONSET_FRACTION = 0.1


def relative_grid(element: str, *, length: int = GRID_LENGTH) -> np.ndarray:
    """Energies relative to the L3 onset on which the network reads a spectrum, eV.

    From 6 eV below the onset to the spin-orbit splitting + 18 eV above it (the L3 and
    L2 white lines and the start of the continuum).

    Returns
    -------
    numpy.ndarray
        (length,) eV.
    """
    so = get_edge(element).spin_orbit_ev
    return np.linspace(-6.0, so + 18.0, length)


def _resample(y: np.ndarray, e: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of rows y (N, E) at per-row energies targets (N, L)."""
    de = e[1] - e[0]
    x = (targets - e[0]) / de
    inside = (x >= 0) & (x <= e.size - 1)
    xc = np.clip(x, 0, e.size - 1)
    i0 = np.clip(np.floor(xc).astype(np.int64), 0, e.size - 2)
    t = xc - i0
    out = np.take_along_axis(y, i0, 1) * (1 - t) + np.take_along_axis(y, i0 + 1, 1) * t
    return np.where(inside, out, 0.0), inside.mean(1)


@dataclass
class PreparedInput:
    """Output of :func:`model_input` (leading shape flattened to N spectra).

    Attributes
    ----------
    x : numpy.ndarray
        (N, 1, L) float32 network input.
    signal : numpy.ndarray
        (N, E) background-subtracted spectra.
    onset_ev, peak_ev : numpy.ndarray
        (N,) L3 onset and maximum, eV.
    coverage : numpy.ndarray
        (N,) share of the grid inside the recorded range.
    """

    x: np.ndarray
    signal: np.ndarray
    onset_ev: np.ndarray
    peak_ev: np.ndarray
    coverage: np.ndarray


# Largest calibration error the coarse alignment looks for, eV: V and Cr sit next to the
# O K edge (532 eV), which must stay outside the search.
MAX_SHIFT_EV = {"V": 8.0, "Cr": 12.0}


def coarse_shift(spectra, energy_ev, *, element: str, max_shift_ev: float | None = None) -> np.ndarray:
    """Rough calibration error of each spectrum from where its white lines rise, eV.

    A straight line is fitted across the tabulated edge +- ``max_shift_ev``; the first
    energy where the smoothed residual exceeds half its maximum is compared with the
    tabulated onset + 1 eV. Only the analysis windows move with it (not the data), so
    that offsets of up to ``max_shift_ev`` keep the background window before the edge.

    Parameters
    ----------
    spectra : array_like
        (N, E).
    energy_ev : array_like
        (E,), eV.
    element : str
    max_shift_ev : float, optional
        Default 25 eV (8 eV for V, 12 eV for Cr).

    Returns
    -------
    numpy.ndarray
        (N,) shift, eV (0 where the edge region is not recorded).
    """
    y = np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    edge = get_edge(element)
    if max_shift_ev is None:
        max_shift_ev = MAX_SHIFT_EV.get(edge.element, 25.0)
    sel = (e >= edge.onset_ev - max_shift_ev - 10.0) & (e <= edge.onset_ev + max_shift_ev + 0.5 * edge.spin_orbit_ev)
    if sel.sum() < 20:
        return np.zeros(len(y))
    de = e[1] - e[0]
    ys = gaussian_filter1d(y[:, sel], max(0.7 / de, 1e-3), axis=1, mode="nearest")
    x = e[sel] - e[sel].mean()
    slope = (ys * x).sum(1) / (x * x).sum()
    res = ys - ys.mean(1, keepdims=True) - slope[:, None] * x
    half = res >= 0.5 * res.max(1, keepdims=True)
    first = e[sel][np.argmax(half, axis=1)]
    shift = first - (edge.onset_ev + 1.0)
    return np.where(np.abs(shift) <= max_shift_ev, shift, 0.0)


def model_input(spectra, energy_ev, *, element: str, window_ev=None, length: int = GRID_LENGTH, background: str = "auto") -> PreparedInput:
    """Background-subtract, locate the L3 onset, resample on :func:`relative_grid`, normalise.

    Parameters
    ----------
    spectra : array_like
        (..., E) core-loss spectra (counts, or already background-subtracted).
    energy_ev : array_like
        (E,), eV, uniform.
    element : str
    window_ev : (float, float), optional
        Pre-edge background window, eV (default from the edge table).
    length : int
        Grid points.
    background : {"auto", "power_law", "constant"}
        See :func:`mltem.eels.subtract_background`.

    Returns
    -------
    PreparedInput
    """
    y = np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    flat = y.reshape(-1, y.shape[-1])
    edge = get_edge(element)
    if window_ev is None:
        # move the tabulated windows with the calibration error of the whole set (median)
        shift = float(np.median(coarse_shift(flat, e, element=element)))
        win = background_window(element, e, window_ev=tuple(v + shift for v in edge.pre_edge_ev))
    else:
        shift = 0.0
        win = background_window(element, e, window_ev=window_ev)
    sig, _ = subtract_background(flat, e, window_ev=win, mode=background)
    sig = np.nan_to_num(sig)
    search = (edge.onset_ev - 10.0 + shift, edge.onset_ev + 0.5 * edge.spin_orbit_ev + 3.0 + shift)
    pos = find_l3(sig, e, element=element, onset_fraction=ONSET_FRACTION, search_ev=search)
    onset = np.where(np.isfinite(pos.onset_ev), pos.onset_ev, get_edge(element).onset_ev)
    grid = relative_grid(element, length=length)
    de = e[1] - e[0]
    step = grid[1] - grid[0]
    sm = gaussian_filter1d(sig, 0.5 * step / de, axis=1, mode="nearest") if de < step else sig
    xs, cover = _resample(sm, e, onset[:, None] + grid[None, :])
    scale = np.abs(xs).max(1, keepdims=True)
    xs = xs / np.where(scale > 0, scale, 1.0)
    return PreparedInput(xs[:, None, :].astype(np.float32), sig, pos.onset_ev, pos.peak_ev, cover)


def valence_from_fractions(fractions, valences) -> np.ndarray:
    """Mean valence sum_k f_k v_k of fractions (..., K)."""
    return np.asarray(fractions, float) @ np.asarray(valences, float)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    ez = np.exp(z)
    return ez / ez.sum(-1, keepdims=True)


def reliability_score(x: np.ndarray, extra: dict) -> np.ndarray:
    """How typical each input is of the training data: 1 = typical, 0 = unlike any.

    The residual of the input after projection on the principal components of the
    training inputs is ranked among the training residuals (stored in the model card):
    the score is the share of training spectra with a larger residual.

    Parameters
    ----------
    x : numpy.ndarray
        (N, 1, L) model inputs.
    extra : dict
        The model card's ``extra`` with ``pca_mean``, ``pca_components`` and
        ``residual_quantiles``.

    Returns
    -------
    numpy.ndarray
        (N,) in [0, 1].
    """
    if not {"pca_mean", "pca_components", "residual_quantiles"} <= set(extra):
        return np.full(len(x), np.nan)
    mean = np.asarray(extra["pca_mean"], float)
    comps = np.asarray(extra["pca_components"], float)
    q = np.asarray(extra["residual_quantiles"], float)
    d = x[:, 0, :].astype(float) - mean
    res = np.sqrt(np.mean((d - (d @ comps.T) @ comps) ** 2, axis=1))
    levels = np.linspace(0, 1, q.size)
    return 1.0 - np.interp(res, q, levels, left=0.0, right=1.0)


@dataclass
class ValenceResult:
    """Per-spectrum results of :func:`analyse_valence`; arrays shaped like the input's leading axes.

    Attributes
    ----------
    valence : numpy.ndarray
        Mean oxidation state (network).
    fractions : numpy.ndarray
        (..., K) fraction of each oxidation state (network).
    valences : tuple of int
        The K oxidation states.
    class_names : tuple of str
        e.g. ("mn2", "mn3", "mn4").
    l3_l2_ratio : numpy.ndarray
        Pearson white-line ratio (classical).
    l3_onset_ev, l3_peak_ev, l2_peak_ev : numpy.ndarray
        Edge positions, eV (classical).
    reliability : numpy.ndarray
        1 = like the training data, 0 = unlike anything the network saw.
    t_lambda : numpy.ndarray or None
        Relative thickness from the low-loss spectra, if given.
    signal : numpy.ndarray or None
        (..., E) background-subtracted (and deconvolved, with a low-loss) spectra; None
        for more than ``keep_signal_max`` spectra (memory).
    model : str
        Model name.
    """

    valence: np.ndarray
    fractions: np.ndarray
    valences: tuple
    class_names: tuple
    l3_l2_ratio: np.ndarray
    l3_onset_ev: np.ndarray
    l3_peak_ev: np.ndarray
    l2_peak_ev: np.ndarray
    reliability: np.ndarray
    t_lambda: np.ndarray | None
    signal: np.ndarray | None
    model: str


def default_model_name(element: str) -> str:
    """Registry name of the shipped model of an element, e.g. ``valence-mn``."""
    return f"valence-{get_edge(element).element.lower()}"


def analyse_valence(
    spectra,
    energy_ev,
    *,
    element: str,
    model=None,
    low_loss=None,
    low_loss_energy_ev=None,
    window_ev=None,
    pca_components: int | None = None,
    batch_size: int = 4096,
    threads: int = 0,
    keep_signal_max: int = 16384,
) -> ValenceResult:
    """Oxidation state, fractions, white-line ratio and onset of L2,3 spectra.

    Parameters
    ----------
    spectra : array_like
        (..., E) core-loss spectra; a dask array is read chunk by chunk (``batch_size``
        spectra at a time), so spectrum images larger than memory work.
    energy_ev : array_like
        (E,), eV, uniform.
    element : str
    model : str or ModelCard, optional
        Registry name or path; default ``valence-<element>``.
    low_loss, low_loss_energy_ev : array_like, optional
        Low-loss spectra ((..., E_ll) or (E_ll,)) and their axis: t/lambda by log-ratio
        and Fourier-ratio deconvolution before the white-line ratio.
    window_ev : (float, float), optional
        Pre-edge background window, eV.
    pca_components : int, optional
        PCA-denoise the spectra first (spectrum images).
    batch_size : int
        Spectra per chunk (memory).
    threads : int
        onnxruntime threads (0: all cores).
    keep_signal_max : int
        Return the background-subtracted spectra only up to this many spectra.

    Returns
    -------
    ValenceResult
    """
    from mltem.eels._deconv import fourier_ratio_deconvolution, thickness_log_ratio
    from mltem.eels._pca import pca_denoise
    from mltem.infer import OnnxModel

    lazy = hasattr(spectra, "compute") and hasattr(spectra, "chunks")
    y = spectra if lazy else np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    if y.shape[-1] != e.size:
        raise MltemError(f"spectra have {y.shape[-1]} channels but the energy axis {e.size}")
    lead = tuple(y.shape[:-1])
    flat = y.reshape(-1, e.size)
    edge = get_edge(element)
    if not (e[0] < edge.onset_ev < e[-1]):
        raise MltemError(f"the {edge.element} L3 edge ({edge.onset_ev:.0f} eV) lies outside the recorded range {e[0]:.1f}-{e[-1]:.1f} eV")
    if pca_components:
        if lazy:
            raise MltemError("PCA denoising needs the spectrum image in memory; drop --pca for lazily read files")
        flat = pca_denoise(flat, pca_components)
    m = OnnxModel(model or default_model_name(element), task="valence", threads=threads)
    extra = m.card.extra
    if extra.get("element", edge.element) != edge.element:
        raise MltemError(f"model '{m.card.name}' is for {extra.get('element')}, not {edge.element}")
    valences = tuple(extra.get("valences", ()))
    names = tuple(m.card.classes)
    length = int(extra.get("grid_length", GRID_LENGTH))
    tl = None
    ll = None
    if low_loss is not None:
        ll = np.asarray(low_loss, float)
        ell = np.asarray(low_loss_energy_ev, float)
        ll_flat = ll.reshape(-1, ll.shape[-1])
        if ll_flat.shape[0] not in (1, flat.shape[0]):
            raise MltemError(f"the low-loss has {ll_flat.shape[0]} spectra, the core-loss {flat.shape[0]}; they must match (or one low-loss)")
        tl = thickness_log_ratio(ll_flat, ell)
    n = int(flat.shape[0])
    out = {k: np.full(n, np.nan) for k in ("valence", "ratio", "onset", "peak", "l2", "rel")}
    fr = np.full((n, len(valences)), np.nan)
    keep = n <= keep_signal_max
    sig_all = np.empty((n, e.size)) if keep else None
    from mltem._progress import progress

    starts = range(0, n, batch_size)
    for i in progress(starts, total=len(starts), desc="valence", unit="chunk") if len(starts) > 1 else starts:
        sl = slice(i, min(n, i + batch_size))
        block = np.asarray(flat[sl], dtype=float)
        prep = model_input(block, e, element=element, window_ev=window_ev, length=length)
        logits = np.concatenate([m(prep.x[j : j + 1024]) for j in range(0, len(prep.x), 1024)])
        f = _softmax(np.asarray(logits, float))
        fr[sl] = f
        out["valence"][sl] = valence_from_fractions(f, valences)
        out["rel"][sl] = reliability_score(prep.x, extra) * np.clip(prep.coverage / 0.95, 0, 1)
        sig = prep.signal
        if ll is not None and e[1] - e[0] > 0:
            ll_sl = ll_flat if ll_flat.shape[0] == 1 else ll_flat[sl]
            if abs((ell[1] - ell[0]) - (e[1] - e[0])) < 1e-6 * (e[1] - e[0]):
                sig = fourier_ratio_deconvolution(sig, ll_sl, e, ell)
            else:
                log.warning("low-loss and core-loss channel widths differ; white-line ratio without deconvolution")
        wl = white_line_ratio(sig, e, element=element)
        out["ratio"][sl], out["onset"][sl], out["peak"][sl], out["l2"][sl] = wl.ratio, prep.onset_ev, prep.peak_ev, wl.l2_ev
        if keep:
            sig_all[sl] = sig

    def r(a):
        return a.reshape(lead)

    return ValenceResult(
        valence=r(out["valence"]), fractions=fr.reshape(*lead, len(valences)), valences=valences, class_names=names,
        l3_l2_ratio=r(out["ratio"]), l3_onset_ev=r(out["onset"]), l3_peak_ev=r(out["peak"]), l2_peak_ev=r(out["l2"]),
        reliability=r(out["rel"]), t_lambda=None if tl is None else (tl.reshape(lead) if tl.size == n else np.broadcast_to(tl, lead).copy()),
        signal=sig_all.reshape(*lead, e.size) if keep else None, model=m.card.name,
    )
