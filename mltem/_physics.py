"""Electron-optical constants shared by every method (one definition, one unit: keV)."""
from __future__ import annotations

import numpy as np
from scipy import constants as _c

__all__ = ["DETECTORS", "DETECTOR_NAMES", "ELECTRON_REST_ENERGY_EV", "check_beam_energy", "check_detector", "electron_wavelength_nm"]

ELECTRON_REST_ENERGY_EV = _c.m_e * _c.c**2 / _c.e
#: Imaging modes of in-situ movies: bright-field TEM (the transmitted beam: denser is
#: darker) and annular dark-field STEM (scattered electrons: denser is brighter).
DETECTORS = ("bf", "haadf")
#: Each detector in words (for messages).
DETECTOR_NAMES = {"bf": "bright-field TEM", "haadf": "annular dark-field STEM"}


def check_detector(detector: str) -> str:
    """``detector`` if it is one of :data:`DETECTORS`, else a ValueError."""
    if detector not in DETECTORS:
        raise ValueError(f"detector must be {' or '.join(map(repr, DETECTORS))}, got {detector!r}")
    return detector


def check_beam_energy(beam_energy_kev: float) -> float:
    """Validate a beam energy in keV and return it in eV."""
    e = float(beam_energy_kev)
    if not np.isfinite(e) or e <= 0:
        raise ValueError(f"beam_energy_kev must be a positive number of keV, got {beam_energy_kev!r}")
    return e * 1e3


def electron_wavelength_nm(beam_energy_kev: float) -> float:
    """Relativistic electron wavelength.

    Parameters
    ----------
    beam_energy_kev : float
        Kinetic energy of the beam electrons (accelerating voltage) in keV.

    Returns
    -------
    float
        Wavelength in nm (1.9687e-3 nm at 300 keV, 2.5079e-3 nm at 200 keV).

    Examples
    --------
    >>> round(electron_wavelength_nm(300.0) * 1e3, 4)
    1.9687
    """
    e = check_beam_energy(beam_energy_kev)
    p = np.sqrt(2 * _c.m_e * _c.e * e * (1 + e / (2 * ELECTRON_REST_ENERGY_EV)))
    return float(_c.h / p * 1e9)
