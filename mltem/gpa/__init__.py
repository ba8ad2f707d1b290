"""Geometric phase analysis (GPA): strain and rotation maps from lattice images and movies.

The maths is in pure functions on arrays (Hytch, Snoeck & Kilaas, Ultramicroscopy 74,
131, 1998). Image axes are (y, x); reciprocal vectors are rows ``(g_y, g_x)`` in 1/px
unless a name says nm; strain maps are stacked (4, y, x) as exx, eyy, exy, rotation (rad).
"""
from mltem.gpa._core import REFERENCES, GPAPlan, GPAResult, gpa, make_plan
from mltem.gpa._defects import find_dislocations
from mltem.gpa._register import LowPassWindow, register_drift
from mltem.gpa._spectrum import (
    MASKS,
    Spectrum,
    default_mask_size,
    find_spots,
    mask_weights,
    mask_width_px,
    refine_spots,
    shortest_lattice_distance,
)
from mltem.gpa._plot import plot_strain
from mltem.gpa._stack import gpa_stack, iter_gpa, lazy_gpa
from mltem.gpa._strain import (
    DEFINITIONS,
    STRAIN_COMPONENTS,
    displacement_from_phases,
    rotate_strain,
    strain_from_distortion,
)

__all__ = [
    "DEFINITIONS",
    "GPAPlan",
    "GPAResult",
    "LowPassWindow",
    "MASKS",
    "REFERENCES",
    "STRAIN_COMPONENTS",
    "Spectrum",
    "default_mask_size",
    "displacement_from_phases",
    "find_dislocations",
    "find_spots",
    "gpa",
    "gpa_stack",
    "iter_gpa",
    "lazy_gpa",
    "make_plan",
    "mask_weights",
    "mask_width_px",
    "plot_strain",
    "refine_spots",
    "register_drift",
    "rotate_strain",
    "shortest_lattice_distance",
    "strain_from_distortion",
]
