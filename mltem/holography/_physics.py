"""Electron-optical constants and the physics on top of a reconstructed phase.

The phase of an electron wave that crossed an electrostatic potential V(x, y, z) is
``phase(x, y) = C_E * integral V dz`` (magnetic fields ignored), with the relativistic
interaction constant ``C_E``. From it follow the mean potential along the beam
``V = phase / (C_E * t)`` and, through Poisson's equation integrated along the beam, the
projected charge density ``rho_proj = -(eps0 / C_E) * Laplacian(phase)``.
"""
from __future__ import annotations

import numpy as np
from scipy import constants as _c
from scipy import fft as _fft

__all__ = [
    "electron_wavelength_nm",
    "interaction_constant",
    "projected_potential",
    "laplacian",
    "projected_charge_density",
    "integrate_charge",
]

from mltem._physics import ELECTRON_REST_ENERGY_EV as _E0_EV
from mltem._physics import check_beam_energy as _check_energy
from mltem._physics import electron_wavelength_nm


def interaction_constant(beam_energy_kev: float) -> float:
    """Relativistic interaction constant C_E of electron holography.

    ``C_E = (2 pi / lambda) * (E + E0) / (E * (E + 2 E0))`` with E the kinetic energy
    and E0 = m0 c^2 the rest energy (both in eV, so C_E is per volt).

    Parameters
    ----------
    beam_energy_kev : float
        Beam energy in keV.

    Returns
    -------
    float
        C_E in rad / (V m): 6.526e6 at 300 keV, 7.288e6 at 200 keV, 9.244e6 at 80 keV
        (multiply by 1e-9 for rad / (V nm)).

    References
    ----------
    Lichte, H. & Lehmann, M. Electron holography - basics and applications. Rep. Prog.
    Phys. 71, 016102 (2008). :DOI:`10.1088/0034-4885/71/1/016102`

    Examples
    --------
    >>> round(interaction_constant(300.0) / 1e6, 3)
    6.526
    """
    e = _check_energy(beam_energy_kev)
    lam_m = electron_wavelength_nm(beam_energy_kev) * 1e-9
    return float(2 * np.pi / lam_m * (e + _E0_EV) / (e * (e + 2 * _E0_EV)))


def projected_potential(phase, thickness_nm, *, beam_energy_kev: float) -> np.ndarray:
    """Mean electrostatic potential along the beam, ``V = phase / (C_E t)``.

    Parameters
    ----------
    phase : numpy.ndarray
        Unwrapped phase in rad, (y, x) or (frame, y, x), relative to vacuum.
    thickness_nm : float or numpy.ndarray
        Specimen thickness in nm: a number or a map broadcastable to ``phase``. Pixels
        with a thickness <= 0 or not finite get NaN.
    beam_energy_kev : float
        Beam energy in keV.

    Returns
    -------
    numpy.ndarray
        Potential in V (float32), same shape as ``phase``.
    """
    phase = np.asarray(phase)
    if phase.ndim not in (2, 3):
        raise ValueError(f"phase must be (y, x) or (frame, y, x), got shape {phase.shape}")
    t = np.asarray(thickness_nm, dtype=np.float64)
    try:
        np.broadcast_shapes(t.shape, phase.shape)
    except ValueError:
        raise ValueError(f"thickness map of shape {t.shape} does not fit a phase of shape {phase.shape}") from None
    if t.ndim == 0 and not (np.isfinite(t) and t > 0):
        raise ValueError(f"thickness_nm must be > 0, got {float(t)}")
    ce = interaction_constant(beam_energy_kev)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = phase / (ce * t * 1e-9)
    v = np.where(np.isfinite(t) & (t > 0), v, np.nan)
    return v.astype(np.float32)


def laplacian(phase, *, pixel_size_nm: float, smooth_nm: float = 0.0) -> np.ndarray:
    """Laplacian of a map, smoothed with a Gaussian, computed spectrally.

    The map is extended evenly at its borders (a cosine transform), so that a
    non-periodic phase gives no wrap-around edges; a best-fitting plane is removed first
    (its Laplacian is zero) to keep the borders smooth.

    Parameters
    ----------
    phase : numpy.ndarray
        Map (y, x) or stack (frame, y, x), e.g. phase in rad.
    pixel_size_nm : float
        Pixel size in nm (square pixels).
    smooth_nm : float
        Standard deviation of the Gaussian smoothing in nm (0: none). The Laplacian
        amplifies noise as k^2; smoothing multiplies it by exp(-2 pi^2 sigma^2 k^2).

    Returns
    -------
    numpy.ndarray
        Laplacian in (units of ``phase``) / nm^2, float64, same shape.
    """
    a = np.asarray(phase, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"phase must be (y, x) or (frame, y, x), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("phase holds NaN or infinite values; fill or crop them before taking the Laplacian")
    if not (pixel_size_nm > 0):
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    if smooth_nm < 0:
        raise ValueError(f"smooth_nm must be >= 0, got {smooth_nm}")
    if a.ndim == 3:
        return np.stack([laplacian(f, pixel_size_nm=pixel_size_nm, smooth_nm=smooth_nm) for f in a])
    ny, nx = a.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    design = np.stack([np.ones(a.size), yy.ravel(), xx.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, a.ravel(), rcond=None)
    a = a - (design @ coef).reshape(a.shape)
    c = _fft.dctn(a, type=2, norm="ortho", workers=-1)
    wy = np.pi * np.arange(ny) / (ny * pixel_size_nm)  # angular frequency, rad/nm
    wx = np.pi * np.arange(nx) / (nx * pixel_size_nm)
    w2 = wy[:, None] ** 2 + wx[None, :] ** 2
    c *= -w2 * np.exp(-0.5 * smooth_nm**2 * w2)
    return _fft.idctn(c, type=2, norm="ortho", workers=-1)


def projected_charge_density(phase, *, pixel_size_nm: float, beam_energy_kev: float, smooth_nm: float) -> np.ndarray:
    """Projected charge density from the phase, ``rho = -(eps0 / C_E) * Laplacian(phase)``.

    Parameters
    ----------
    phase : numpy.ndarray
        Unwrapped phase in rad, (y, x) or (frame, y, x).
    pixel_size_nm : float
        Pixel size in nm.
    beam_energy_kev : float
        Beam energy in keV.
    smooth_nm : float
        Standard deviation of the Gaussian smoothing in nm applied with the Laplacian
        (it sets the spatial resolution of the charge map; the integral of the charge
        over a region wider than a few ``smooth_nm`` is unchanged by it).

    Returns
    -------
    numpy.ndarray
        Charge per unit area, integrated along the beam, in elementary charges per nm^2
        (e/nm^2; positive for positive charge), float32.

    Notes
    -----
    The mean inner potential of a particle also has a non-zero Laplacian at its
    surface and shows up as an apparent surface charge; separate it (e.g. by two beam
    energies or a known shape) before reading absolute charges at edges.

    References
    ----------
    Beleggia, M. et al. Towards quantitative off-axis electron holographic mapping of
    the electric field around the tip of a sharp biased metallic needle. J. Appl. Phys.
    116, 024305 (2014). :DOI:`10.1063/1.4887448`
    """
    lap = laplacian(phase, pixel_size_nm=pixel_size_nm, smooth_nm=smooth_nm)  # rad/nm^2
    ce = interaction_constant(beam_energy_kev)  # rad/(V m)
    # rho [C/m^2] = -(eps0/C_E) * lap[rad/m^2]; lap[rad/m^2] = lap[rad/nm^2] * 1e18;
    # rho [e/nm^2] = rho [C/m^2] * 1e-18 / e.
    return (-(_c.epsilon_0 / (ce * _c.e)) * lap).astype(np.float32)


def integrate_charge(charge, *, pixel_size_nm: float, mask=None) -> float:
    """Total charge in a region of a projected charge density map.

    Parameters
    ----------
    charge : numpy.ndarray
        Projected charge density (y, x) in e/nm^2.
    pixel_size_nm : float
        Pixel size in nm.
    mask : numpy.ndarray of bool, optional
        Region to integrate over (default: the whole map).

    Returns
    -------
    float
        Charge in elementary charges (e).
    """
    q = np.asarray(charge, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"charge must be a (y, x) map, got shape {q.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != q.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the map's {q.shape}")
        q = q[mask]
    return float(np.nansum(q) * pixel_size_nm**2)
