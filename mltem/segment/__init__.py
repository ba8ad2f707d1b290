"""Segmentation of in-situ TEM movies (electrode, SEI, lithium, bubbles) and the
measurements they give (SEI thickness, lithium area, dendrite count, length and tip
velocity), calibrated in nm and s.

Inference needs numpy, scipy, scikit-image and onnxruntime; training the network
(``mltem.segment._task``) needs ``mltem[train]``.
"""
from mltem.segment._classical import classical_labels, clean_labels, temporal_mode
from mltem.segment._contrast import contrast_mismatch, contrast_note, contrast_statistics
from mltem.segment._infer import (
    DEFAULT_MODEL,
    DETECTOR_MODELS,
    load_segment_model,
    segment_frames,
    segment_stream,
    trained_detector,
)
from mltem.segment._labels import find_label_files, load_labelled_frames, tile_pairs
from mltem.segment._measure import (
    DENDRITE_COLUMNS,
    METRIC_COLUMNS,
    TRACK_COLUMNS,
    Dendrite,
    FrameMeasurement,
    dendrite_tracks,
    find_dendrites,
    measure_frame,
    measure_movie,
    path_length,
    running_median,
    sei_thickness_samples,
    skeleton_length,
)
from mltem.segment._refine import (
    DEFAULT_REFINER,
    PROFILE_BINS,
    SeiRefiner,
    edge_profiles,
    load_sei_refiner,
    refine_features,
    refine_sei_rows,
    sei_probability,
)
from mltem.segment._preprocess import NORMALISATION, normalise_frames, stack_neighbours

CLASSES = ("electrolyte", "electrode", "SEI", "lithium", "bubble")

__all__ = [
    "CLASSES",
    "DEFAULT_MODEL",
    "DEFAULT_REFINER",
    "DETECTOR_MODELS",
    "DENDRITE_COLUMNS",
    "METRIC_COLUMNS",
    "NORMALISATION",
    "PROFILE_BINS",
    "TRACK_COLUMNS",
    "Dendrite",
    "SeiRefiner",
    "FrameMeasurement",
    "classical_labels",
    "clean_labels",
    "contrast_mismatch",
    "contrast_note",
    "contrast_statistics",
    "dendrite_tracks",
    "edge_profiles",
    "find_dendrites",
    "find_label_files",
    "iou_per_class",
    "load_labelled_frames",
    "load_segment_model",
    "load_sei_refiner",
    "measure_frame",
    "measure_movie",
    "normalise_frames",
    "path_length",
    "refine_features",
    "refine_sei_rows",
    "running_median",
    "segment_frames",
    "segment_stream",
    "sei_probability",
    "sei_thickness_samples",
    "skeleton_length",
    "stack_neighbours",
    "temporal_mode",
    "tile_pairs",
    "trained_detector",
]


def iou_per_class(pred, truth, *, n_classes: int = 5):
    """Intersection over union per class (NaN for a class absent from both).

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer class arrays of the same shape.

    Returns
    -------
    numpy.ndarray
        (n_classes,) float.
    """
    import numpy as np

    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"pred and truth shapes differ: {p.shape} vs {t.shape}")
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        pc, tc = p == c, t == c
        u = np.count_nonzero(pc | tc)
        if u:
            out[c] = np.count_nonzero(pc & tc) / u
    return out
