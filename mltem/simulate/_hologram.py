"""Synthetic off-axis electron holograms of objects with an analytic phase.

Each ``phase_*`` function returns the exact phase (rad) of a textbook object on a pixel
grid; :func:`simulate_hologram` turns a phase (and amplitude) into an object hologram
and a vacuum reference hologram with fringe contrast, Fresnel fringes from the biprism
filament edges and Poisson noise at a given dose.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import constants as _c
from scipy import special

from mltem.holography._physics import interaction_constant

__all__ = [
    "SyntheticHologram",
    "simulate_hologram",
    "phase_mip_sphere",
    "phase_charged_sphere",
    "phase_line_charge",
    "phase_potential_step",
]


def _grid(shape, pixel_size_nm: float, center=None):
    ny, nx = (int(s) for s in shape)
    if ny < 8 or nx < 8:
        raise ValueError(f"shape must be at least 8 x 8, got {shape}")
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    cy, cx = ((ny - 1) / 2, (nx - 1) / 2) if center is None else (float(center[0]), float(center[1]))
    y = (np.arange(ny) - cy)[:, None] * pixel_size_nm
    x = (np.arange(nx) - cx)[None, :] * pixel_size_nm
    return y, x


def phase_mip_sphere(shape, *, pixel_size_nm: float, radius_nm: float, mip_v: float,
                     beam_energy_kev: float = 300.0, center=None) -> np.ndarray:
    """Phase of a neutral sphere of uniform mean inner potential.

    ``phase = C_E * V0 * 2 sqrt(a^2 - r^2)`` inside, 0 outside.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx).
    pixel_size_nm : float
        Pixel size in nm.
    radius_nm : float
        Sphere radius a in nm.
    mip_v : float
        Mean inner potential V0 in V (e.g. 17 V for Si, ~20 V for LiCoO2).
    beam_energy_kev : float
        Beam energy in keV.
    center : tuple of float, optional
        (y, x) centre in pixels (default the image centre).

    Returns
    -------
    numpy.ndarray
        (Ny, Nx) phase in rad, float64.
    """
    if not radius_nm > 0:
        raise ValueError(f"radius_nm must be > 0, got {radius_nm}")
    y, x = _grid(shape, pixel_size_nm, center)
    r2 = y**2 + x**2
    t_nm = 2 * np.sqrt(np.clip(radius_nm**2 - r2, 0, None))
    return interaction_constant(beam_energy_kev) * mip_v * t_nm * 1e-9


def phase_charged_sphere(shape, *, pixel_size_nm: float, radius_nm: float, charge_e: float,
                         beam_energy_kev: float = 300.0, center=None) -> np.ndarray:
    """Phase of the electric field of a uniformly charged sphere (inside and outside).

    The potential is integrated along the beam over all space; the (infinite) constant
    is dropped, so the phase is ``-(C_E Q / (2 pi eps0)) ln(r / 1 nm)`` outside (the
    field of the sphere) and, inside,
    ``C_E Q / (2 pi eps0) * [-ln((z_a + a) / 1 nm) + (z_a (3 - r^2/a^2) - z_a^3 / (3 a^2)) / (2 a)]``
    with ``z_a = sqrt(a^2 - r^2)`` (continuous at r = a). Its projected charge density
    ``-(eps0 / C_E) Laplacian(phase)`` integrates to Q.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx).
    pixel_size_nm : float
        Pixel size in nm.
    radius_nm : float
        Sphere radius a in nm.
    charge_e : float
        Total charge Q in elementary charges (signed).
    beam_energy_kev : float
        Beam energy in keV.
    center : tuple of float, optional
        (y, x) centre in pixels.

    Returns
    -------
    numpy.ndarray
        (Ny, Nx) phase in rad, float64.
    """
    if not radius_nm > 0:
        raise ValueError(f"radius_nm must be > 0, got {radius_nm}")
    y, x = _grid(shape, pixel_size_nm, center)
    a = radius_nm * 1e-9
    r = np.hypot(y, x) * 1e-9
    k = interaction_constant(beam_energy_kev) * charge_e * _c.e / (2 * np.pi * _c.epsilon_0)  # rad
    inside = r < a
    out = np.empty_like(r)
    ro = np.maximum(r[~inside], 1e-30)
    out[~inside] = -k * np.log(ro / 1e-9)
    ri = r[inside]
    za = np.sqrt(a**2 - ri**2)
    out[inside] = k * (-np.log((za + a) / 1e-9) + (za * (3 - ri**2 / a**2) - za**3 / (3 * a**2)) / (2 * a))
    return out


def phase_line_charge(shape, *, pixel_size_nm: float, charge_per_nm_e: float, width_nm: float,
                      angle_rad: float = 0.0, beam_energy_kev: float = 300.0, center=None) -> np.ndarray:
    """Phase of a straight line charge lying in the specimen plane (e.g. a charged grain boundary).

    The line runs through ``center`` at ``angle_rad`` from the x axis, carries
    ``charge_per_nm_e`` elementary charges per nm of length, spread across it as a
    Gaussian of standard deviation ``width_nm``. Projected along the beam,
    ``phase(u) = -(C_E lambda / eps0) [u erf(u / (sqrt2 s)) / 2 + s / sqrt(2 pi) exp(-u^2 / 2 s^2)]``
    with u the distance from the line: a tent whose second derivative is the charge.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx).
    pixel_size_nm : float
        Pixel size in nm.
    charge_per_nm_e : float
        Line charge density, e/nm.
    width_nm : float
        Gaussian width s of the charge across the line, nm.
    angle_rad : float
        Direction of the line from the x axis, rad.
    beam_energy_kev : float
        Beam energy in keV.
    center : tuple of float, optional
        (y, x) of a point on the line, pixels.

    Returns
    -------
    numpy.ndarray
        (Ny, Nx) phase in rad, float64.
    """
    if not width_nm > 0:
        raise ValueError(f"width_nm must be > 0, got {width_nm}")
    y, x = _grid(shape, pixel_size_nm, center)
    u = (-np.sin(angle_rad) * x + np.cos(angle_rad) * y) * 1e-9  # distance across the line, m
    s = width_nm * 1e-9
    lam = charge_per_nm_e * _c.e / 1e-9  # C/m
    prof = u * special.erf(u / (np.sqrt(2) * s)) / 2 + s / np.sqrt(2 * np.pi) * np.exp(-(u**2) / (2 * s**2))
    return -interaction_constant(beam_energy_kev) * lam / _c.epsilon_0 * prof


def phase_potential_step(shape, *, pixel_size_nm: float, step_v: float, thickness_nm: float, width_nm: float,
                         angle_rad: float = 0.0, beam_energy_kev: float = 300.0, center=None) -> np.ndarray:
    """Phase of a p-n-like potential step across a line in a slab of uniform thickness.

    ``V(u) = step_v / 2 * tanh(u / width_nm)``, u the distance across the line through
    ``center`` at ``angle_rad`` from the x axis; ``phase = C_E V t``.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx).
    pixel_size_nm : float
        Pixel size in nm.
    step_v : float
        Built-in potential step in V (difference between the two sides).
    thickness_nm : float
        Slab thickness in nm.
    width_nm : float
        Width of the step (depletion half-width), nm.
    angle_rad : float
        Direction of the junction line from the x axis, rad.
    beam_energy_kev : float
        Beam energy in keV.
    center : tuple of float, optional
        (y, x) of a point on the junction, pixels.

    Returns
    -------
    numpy.ndarray
        (Ny, Nx) phase in rad, float64.
    """
    if not (width_nm > 0 and thickness_nm > 0):
        raise ValueError(f"width_nm and thickness_nm must be > 0, got {width_nm}, {thickness_nm}")
    y, x = _grid(shape, pixel_size_nm, center)
    u = -np.sin(angle_rad) * x + np.cos(angle_rad) * y
    v = 0.5 * step_v * np.tanh(u / width_nm)
    return interaction_constant(beam_energy_kev) * v * thickness_nm * 1e-9


@dataclass
class SyntheticHologram:
    """A simulated hologram pair and its ground truth.

    Attributes
    ----------
    hologram, reference : numpy.ndarray
        (Ny, Nx) object and vacuum reference holograms, float32 (counts if a dose was
        given, else intensity with mean about 1).
    phase : numpy.ndarray
        Exact object phase (rad), float64.
    amplitude : numpy.ndarray
        Exact object amplitude, float64.
    sideband : tuple of float
        Exact carrier position (ky, kx) in Fourier pixels; the sideband carrying
        ``exp(+i phase)``.
    pixel_size_nm : float
    """

    hologram: np.ndarray
    reference: np.ndarray
    phase: np.ndarray
    amplitude: np.ndarray
    sideband: tuple
    pixel_size_nm: float


def _fresnel_edge(s: np.ndarray) -> np.ndarray:
    """Complex amplitude behind a straight edge (1 on the lit side far away, 0 in shadow)."""
    sf, cf = special.fresnel(s)
    return ((cf + 0.5) + 1j * (sf + 0.5)) * (1 - 1j) / 2


def simulate_hologram(phase, *, amplitude=None, fringe_spacing_px: float = 4.0, fringe_angle_rad: float = 0.5,
                      contrast: float = 0.3, dose: float | None = 1000.0, fresnel_px: float | None = 3.0,
                      overlap: float = 1.08, distortion_rad: float = 0.3, pixel_size_nm: float = 1.0,
                      seed: int | None = 0) -> SyntheticHologram:
    """Simulate an off-axis object hologram and its vacuum reference.

    The object beam ``psi = A exp(i phase)`` interferes with the vacuum beam tilted by
    the biprism: ``I = |a|^2 + |A b|^2 + 2 mu Re(conj(a) A b exp(i (2 pi k.r + phase + d)))``,
    with ``mu`` the fringe contrast, ``d`` a smooth distortion common to object and
    reference (lens and detector distortions, removed by the reference), and ``a``,
    ``b`` the two beams each cut by one edge of the biprism filament's shadow, which
    puts Fresnel fringes along the overlap's borders. The reference is the same with
    ``A = 1, phase = 0``. Poisson noise at ``dose`` electrons per pixel (in the overlap).

    Parameters
    ----------
    phase : numpy.ndarray
        (Ny, Nx) object phase, rad.
    amplitude : numpy.ndarray, optional
        (Ny, Nx) object amplitude (default 1).
    fringe_spacing_px : float
        Fringe period in pixels (>= 2.5).
    fringe_angle_rad : float
        Direction of the carrier wave vector from the x axis, rad.
    contrast : float
        Fringe contrast mu, 0..1 (0.1-0.4 on real instruments).
    dose : float or None
        Mean electrons per pixel of the hologram; None: no noise.
    fresnel_px : float or None
        Width of the first Fresnel fringe of the filament edges, pixels; None: no edges.
    overlap : float
        Width of the overlap region along the carrier direction, as a fraction of the
        image extent (> 1 puts the filament edges just outside the image so that only
        their Fresnel fringes show).
    distortion_rad : float
        Amplitude of the smooth phase distortion shared by object and reference, rad.
    pixel_size_nm : float
        Stored with the result.
    seed : int or None
        Seed of the noise and distortion.

    Returns
    -------
    SyntheticHologram
    """
    phase = np.asarray(phase, dtype=np.float64)
    if phase.ndim != 2:
        raise ValueError(f"phase must be (y, x), got shape {phase.shape}")
    amp = np.ones_like(phase) if amplitude is None else np.asarray(amplitude, dtype=np.float64)
    if amp.shape != phase.shape:
        raise ValueError(f"amplitude shape {amp.shape} differs from the phase's {phase.shape}")
    if not fringe_spacing_px >= 2.5:
        raise ValueError(f"fringe_spacing_px must be >= 2.5 pixels, got {fringe_spacing_px}")
    if not 0 < contrast <= 1:
        raise ValueError(f"contrast must be in (0, 1], got {contrast}")
    if dose is not None and not dose > 0:
        raise ValueError(f"dose must be > 0 electrons per pixel, got {dose}")
    rng = np.random.default_rng(seed)
    ny, nx = phase.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    ky = np.sin(fringe_angle_rad) / fringe_spacing_px * ny  # Fourier pixels
    kx = np.cos(fringe_angle_rad) / fringe_spacing_px * nx
    carrier = 2 * np.pi * (ky * yy / ny + kx * xx / nx)
    # smooth distortion: a few low-order modes
    c = rng.normal(size=4) * distortion_rad / 2
    d = (c[0] * np.cos(2 * np.pi * yy / ny) + c[1] * np.sin(2 * np.pi * xx / nx)
         + c[2] * np.cos(2 * np.pi * (xx + yy) / (2 * nx)) + c[3] * ((yy / ny - 0.5) ** 2))
    if fresnel_px is not None:
        u = (np.cos(fringe_angle_rad) * (xx - (nx - 1) / 2) + np.sin(fringe_angle_rad) * (yy - (ny - 1) / 2))
        extent = abs(np.cos(fringe_angle_rad)) * nx + abs(np.sin(fringe_angle_rad)) * ny
        half = overlap * extent / 2
        a = _fresnel_edge((half - u) / fresnel_px)   # vacuum beam, lit for u < half
        b = _fresnel_edge((u + half) / fresnel_px)   # object beam, lit for u > -half
    else:
        a = b = np.ones_like(phase, dtype=complex)

    def intensity(A, ph):
        cross = np.conj(a) * b * A * np.exp(1j * (carrier + ph + d))
        return np.abs(a) ** 2 + np.abs(A * b) ** 2 + 2 * contrast * cross.real

    i_obj = intensity(amp, phase)
    i_ref = intensity(np.ones_like(amp), np.zeros_like(phase))
    if dose is not None:
        i_obj = rng.poisson(np.clip(i_obj, 0, None) * dose / 2).astype(np.float32)
        i_ref = rng.poisson(np.clip(i_ref, 0, None) * dose / 2).astype(np.float32)
    else:
        i_obj, i_ref = (i / 2 for i in (i_obj, i_ref))
    return SyntheticHologram(hologram=np.asarray(i_obj, dtype=np.float32), reference=np.asarray(i_ref, dtype=np.float32),
                             phase=phase, amplitude=amp, sideband=(float(ky), float(kx)),
                             pixel_size_nm=float(pixel_size_nm))
