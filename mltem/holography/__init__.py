"""Off-axis electron holography: phase, amplitude, potential and charge-density maps.

Pure functions on numpy arrays: :func:`find_sideband`, :func:`estimate_aperture_radius`,
:func:`reconstruct_hologram` (and :class:`HologramReconstructor` /
:func:`reconstruct_series` for movies), :func:`unwrap_phase`, :func:`remove_phase_ramp`,
and the physics: :func:`interaction_constant`, :func:`projected_potential`,
:func:`projected_charge_density`, :func:`line_profile`.
"""
from mltem.holography._aperture import APERTURES, ApertureEstimate, aperture_mask, estimate_aperture_radius
from mltem.holography._physics import (
    electron_wavelength_nm,
    integrate_charge,
    interaction_constant,
    laplacian,
    projected_charge_density,
    projected_potential,
)
from mltem.holography._profile import line_profile
from mltem.holography._reconstruct import (
    HologramReconstruction,
    HologramReconstructor,
    reconstruct_hologram,
    reconstruct_series,
)
from mltem.holography._sideband import Sideband, despike, find_sideband
from mltem.holography._unwrap import remove_phase_ramp, unwrap_phase

__all__ = [
    "APERTURES",
    "ApertureEstimate",
    "HologramReconstruction",
    "HologramReconstructor",
    "Sideband",
    "aperture_mask",
    "despike",
    "electron_wavelength_nm",
    "estimate_aperture_radius",
    "find_sideband",
    "integrate_charge",
    "interaction_constant",
    "laplacian",
    "line_profile",
    "projected_charge_density",
    "projected_potential",
    "reconstruct_hologram",
    "reconstruct_series",
    "remove_phase_ramp",
    "unwrap_phase",
]
