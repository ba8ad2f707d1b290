"""EELS: classical L2,3-edge analysis (background, deconvolution, thickness, white lines,
MLLS, calibration, PCA) and oxidation-state (valence) inference with a shipped network.

All routines are pure functions on numpy arrays shaped (..., energy) with an energy
axis ``energy_ev`` (E,) in eV: one spectrum, a line scan or a spectrum image alike.
"""
from mltem.eels._background import fit_power_law, power_law, subtract_background
from mltem.eels._calibrate import shift_from_edge, shift_from_zlp, shift_spectra
from mltem.eels._deconv import (
    elastic_threshold,
    extract_zlp,
    fourier_log_deconvolution,
    fourier_ratio_deconvolution,
    hanning_taper,
    thickness_log_ratio,
    zlp_centre,
)
from mltem.eels._edges import EDGES, VALENCE_ELEMENTS, Edge, background_window, get_edge
from mltem.eels._mlls import MLLSResult, mlls_fit
from mltem.eels._pca import pca_denoise
from mltem.eels._valence import (
    ValenceResult,
    analyse_valence,
    coarse_shift,
    default_model_name,
    model_input,
    relative_grid,
    reliability_score,
    valence_from_fractions,
)
from mltem.eels._whiteline import EdgePositions, WhiteLineResult, double_step, find_l3, white_line_ratio

__all__ = [
    "EDGES",
    "Edge",
    "EdgePositions",
    "MLLSResult",
    "VALENCE_ELEMENTS",
    "ValenceResult",
    "WhiteLineResult",
    "analyse_valence",
    "background_window",
    "coarse_shift",
    "default_model_name",
    "double_step",
    "elastic_threshold",
    "extract_zlp",
    "find_l3",
    "fit_power_law",
    "fourier_log_deconvolution",
    "fourier_ratio_deconvolution",
    "get_edge",
    "hanning_taper",
    "mlls_fit",
    "model_input",
    "pca_denoise",
    "power_law",
    "relative_grid",
    "reliability_score",
    "shift_from_edge",
    "shift_from_zlp",
    "shift_spectra",
    "subtract_background",
    "thickness_log_ratio",
    "valence_from_fractions",
    "white_line_ratio",
    "zlp_centre",
]
