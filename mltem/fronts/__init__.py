"""Reaction-front tracking in in-situ movies (nanowires, particles, lattice images) and kinetics.

Classical tracker (:func:`track_fronts`): drift, wire axis / particle outline, kymograph,
sub-pixel step; lattice images through GPA's strain. Network tracker
(:func:`track_fronts_network`): U-Net segmentation through ONNX. Both are smoothed by a
constant-velocity Kalman filter (:func:`kalman_smooth`) that reports the uncertainty;
:func:`fit_growth_law` fits ``x = x0 + k (t - t0)^n`` with confidence intervals.
"""
from mltem.fronts._geometry import (
    EDGE_RULES,
    GEOMETRIES,
    FrontAxis,
    axis_from_points,
    detect_axis,
    foreground_mask,
    measure_drift,
    sample_kymograph,
    specimen_zone,
)
from mltem.fronts._kalman import KalmanTrack, kalman_smooth, measurement_noise
from mltem.fronts._kinetics import MIN_POINTS_RELIABLE, KineticsFit, fit_growth_law, growth_verdict
from mltem.fronts._netinput import NETWORK_NORMALISATION, network_input
from mltem.fronts._plot import plot_kymograph
from mltem.fronts._track import (
    EDGE_SOURCES,
    METHODS,
    MODES,
    FrontTrack,
    bin_frames,
    front_positions,
    is_lattice_image,
    refine_with_intensity,
    segment_frames,
    track_fronts,
    upsample_linear,
    track_fronts_network,
    width_kymograph,
)

__all__ = [
    "EDGE_RULES", "EDGE_SOURCES", "GEOMETRIES", "METHODS", "MIN_POINTS_RELIABLE", "MODES", "NETWORK_NORMALISATION",
    "FrontAxis", "FrontTrack", "KalmanTrack", "KineticsFit",
    "axis_from_points", "bin_frames", "detect_axis", "fit_growth_law", "foreground_mask", "front_positions",
    "growth_verdict", "is_lattice_image", "kalman_smooth", "measure_drift", "measurement_noise",
    "network_input", "plot_kymograph", "refine_with_intensity", "sample_kymograph", "segment_frames", "specimen_zone",
    "track_fronts",
    "track_fronts_network", "upsample_linear", "width_kymograph",
]
