"""Selected-area / nanobeam electron diffraction: preprocessing, kinematic simulation and
indexing (phase, zone axis, in-plane angle) of spot patterns.

Pure functions on numpy arrays; pymatgen is used only to read CIFs.
"""
from mltem._physics import electron_wavelength_nm
from mltem.diffraction._crystal import (
    BUILTIN_PHASES,
    Phase,
    Reflections,
    ZoneAxis,
    load_phase,
    phase_from_structure,
    reflections,
    zone_axes,
    zone_rotation,
)
from mltem.diffraction._index import (
    IndexResult,
    IndexSettings,
    Prepared,
    TemplateBank,
    build_templates,
    index_pattern,
    mark_unmatched,
    match_templates,
    prepare_pattern,
)
from mltem.diffraction._kinematic import Spots, render_pattern, simulate_spots
from mltem.diffraction._network import NetworkIndexer, model_for_phases, network_input
from mltem.diffraction._preprocess import (
    Peaks,
    calibrate_from_standard,
    correct_ellipse,
    find_centre,
    find_spots,
    fit_ellipse,
    invalid_mask,
    pixel_size_from_camera,
    polar_transform,
    radial_profile,
    remove_background,
)
from mltem.diffraction._parallel import IndexPool, Indexed, default_jobs
from mltem.diffraction._scattering import electron_scattering_factor
from mltem.diffraction._session import (
    SharedCalibration,
    index_batch,
    index_prepared,
    index_series,
    index_with_shared,
    shared_calibration,
)

__all__ = [
    "BUILTIN_PHASES", "IndexResult", "IndexSettings", "Peaks", "Phase", "Prepared", "Reflections", "Spots",
    "TemplateBank", "ZoneAxis", "build_templates", "calibrate_from_standard", "correct_ellipse",
    "electron_scattering_factor", "electron_wavelength_nm", "find_centre", "find_spots", "fit_ellipse",
    "index_pattern", "invalid_mask", "load_phase", "match_templates", "model_for_phases", "NetworkIndexer",
    "network_input", "phase_from_structure",
    "pixel_size_from_camera", "polar_transform", "prepare_pattern", "radial_profile", "reflections",
    "remove_background", "render_pattern", "simulate_spots", "zone_axes", "zone_rotation",
    "SharedCalibration", "index_batch", "index_prepared", "index_series", "index_with_shared", "mark_unmatched",
    "shared_calibration", "IndexPool", "Indexed", "default_jobs",
]
