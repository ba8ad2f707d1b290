"""Kinematic electron diffraction: spot lists and detector-like rendering.

Spots: for a crystal orientation R (crystal Cartesian -> laboratory), each reflection g
(|g| <= g_max) sits at g_lab = R g; its excitation error for a beam along +z with wave
number k = 1/lambda is s = (k^2 - |k e_z + g_lab|^2) / (2 k), and its intensity is
|F_g|^2 times a relrod profile of a foil of thickness t, the Gaussian with the same
height and integral as the kinematic sinc^2:  exp(-pi (t s)^2).  Positions on the
detector are the flat projections (g_x, g_y) (small-angle).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mltem._physics import electron_wavelength_nm
from mltem.diffraction._crystal import Phase, reflections, zone_rotation

__all__ = ["Spots", "simulate_spots", "render_pattern"]


@dataclass
class Spots:
    """A simulated spot pattern.

    Attributes
    ----------
    xy_inv_nm : numpy.ndarray
        (n, 2) positions (x, y) on the detector in 1/nm from the direct beam.
    intensity : numpy.ndarray
        (n,) kinematic intensities in Å^2 (|F|^2 times the relrod profile).
    hkl : numpy.ndarray
        (n, 3) int Miller indices.
    excitation_error : numpy.ndarray
        (n,) s in 1/nm.
    """

    xy_inv_nm: np.ndarray
    intensity: np.ndarray
    hkl: np.ndarray
    excitation_error: np.ndarray

    def __len__(self) -> int:
        return len(self.intensity)


def simulate_spots(phase: Phase, zone=None, inplane_rad: float = 0.0, *, rotation=None, tilt_rad=(0.0, 0.0),
                   energy_ev: float = 200e3, g_max_inv_nm: float = 10.0, thickness_nm: float | None = 20.0,
                   holz: bool = False, min_rel_intensity: float = 1e-4) -> Spots:
    """Kinematic spot pattern of a phase in a given orientation.

    Parameters
    ----------
    phase : Phase
    zone : sequence of 3 int, optional
        Zone axis [uvw]; with ``inplane_rad`` and ``tilt_rad`` it defines the orientation
        (see :func:`mltem.diffraction.zone_rotation`). Give either ``zone`` or ``rotation``.
    inplane_rad : float
        In-plane angle of the zone's reference reflection from detector +x, radians.
    rotation : numpy.ndarray, optional
        (3, 3) crystal -> laboratory rotation instead of ``zone``.
    tilt_rad : (float, float)
        Off-zone tilt about laboratory x and y, radians.
    energy_ev : float
        Beam energy in eV.
    g_max_inv_nm : float
        Largest |g| in 1/nm.
    thickness_nm : float or None
        Foil thickness for the relrod profile; None switches the excitation error off
        (every zero-order reflection at full |F|^2, as in a precessed pattern).
    holz : bool
        Include higher-order Laue zones (reflections with g . [uvw] != 0); needs
        ``thickness_nm``. Without ``zone`` (a bare rotation) HOLZ are always included.
    min_rel_intensity : float
        Drop spots weaker than this fraction of the strongest.

    Returns
    -------
    Spots
    """
    if (zone is None) == (rotation is None):
        raise ValueError("give exactly one of zone or rotation")
    if thickness_nm is not None and not thickness_nm > 0:
        raise ValueError(f"thickness_nm must be positive or None, got {thickness_nm}")
    refl = reflections(phase, g_max_inv_nm)
    hkl, g, F2 = refl.hkl, refl.g_cart, refl.intensity
    if zone is not None:
        rotation = zone_rotation(phase, zone, inplane_rad, tilt_rad=tilt_rad)
        if not holz or thickness_nm is None:
            on = (hkl @ np.asarray(zone)) == 0
            hkl, g, F2 = hkl[on], g[on], F2[on]
    gl = g @ np.asarray(rotation, float).T
    k = 1.0 / electron_wavelength_nm(energy_ev / 1e3)
    s = (k**2 - ((gl[:, 0] ** 2 + gl[:, 1] ** 2) + (k + gl[:, 2]) ** 2)) / (2 * k)
    inten = F2.copy() if thickness_nm is None else F2 * np.exp(-np.pi * (thickness_nm * s) ** 2)
    keep = inten >= min_rel_intensity * (inten.max() if len(inten) else 1.0)
    return Spots(gl[keep, :2], inten[keep], hkl[keep], s[keep])


def render_pattern(spots: Spots, *, shape=(256, 256), pixel_size_inv_nm: float = 0.035, centre_yx=None,
                   spot_sigma_px: float = 1.2, peak_counts: float = 2000.0, direct_beam_ratio: float = 20.0,
                   gamma: float = 0.6, background_counts: float = 5.0, diffuse_counts: float = 60.0,
                   diffuse_width_inv_nm: float = 1.5, beam_stop: dict | None = None,
                   ellipticity: float = 0.0, ellipse_angle_rad: float = 0.0, saturation: float | None = 65535.0,
                   read_noise: float = 2.0, rng=None, dtype=np.float32) -> np.ndarray:
    """Render a spot list like a detector sees it.

    Parameters
    ----------
    spots : Spots
    shape : (int, int)
        Detector (y, x) in pixels.
    pixel_size_inv_nm : float
        Calibration in 1/nm per pixel.
    centre_yx : (float, float), optional
        Direct-beam position in pixels (default: the detector centre, (n-1)/2).
    spot_sigma_px : float
        Gaussian spot width in pixels.
    peak_counts : float
        Counts at the peak of the strongest diffracted spot.
    direct_beam_ratio : float
        Direct-beam peak over the strongest diffracted spot.
    gamma : float
        Spot intensities are (I / I_max)**gamma: a crude stand-in for dynamical scattering,
        which flattens kinematic intensity ratios.
    background_counts : float
        Flat background per pixel.
    diffuse_counts, diffuse_width_inv_nm : float
        Diffuse (inelastic/thermal) halo: diffuse_counts * exp(-|g| / width).
    beam_stop : dict, optional
        ``{"angle_rad": a, "width_px": w, "disk_px": r}``: a rod of width w from the centre
        to the edge at angle a, plus a disk of radius r over the direct beam; it reads 0.
    ellipticity : float
        Elliptical distortion: the detector axis at ``ellipse_angle_rad`` is stretched by
        (1 + ellipticity).
    ellipse_angle_rad : float
    saturation : float or None
        Counts are clipped at this value (None: no clipping).
    read_noise : float
        Gaussian read noise (counts); Poisson noise is always applied when ``rng`` is given.
    rng : numpy.random.Generator, optional
        Noise source; None renders a noise-free image.
    dtype : numpy dtype

    Returns
    -------
    numpy.ndarray
        (y, x) image in counts.
    """
    ny, nx = int(shape[0]), int(shape[1])
    if not pixel_size_inv_nm > 0:
        raise ValueError(f"pixel_size_inv_nm must be positive, got {pixel_size_inv_nm}")
    cy, cx = ((ny - 1) / 2, (nx - 1) / 2) if centre_yx is None else (float(centre_yx[0]), float(centre_yx[1]))
    xy = np.asarray(spots.xy_inv_nm, float) / pixel_size_inv_nm
    if ellipticity:
        c, s = np.cos(ellipse_angle_rad), np.sin(ellipse_angle_rad)
        rot = np.array([[c, -s], [s, c]])
        xy = xy @ rot @ np.diag([1 + ellipticity, 1.0]) @ rot.T
    inten = np.asarray(spots.intensity, float)
    rel = (inten / inten.max()) ** gamma if len(inten) else inten
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    img = np.full((ny, nx), float(background_counts))
    r = np.hypot(yy - cy, xx - cx) * pixel_size_inv_nm
    img += diffuse_counts * np.exp(-r / diffuse_width_inv_nm)
    half = int(np.ceil(4 * spot_sigma_px)) + 1
    pos = np.concatenate([[[0.0, 0.0]], xy]) + [cx, cy]
    amp = np.concatenate([[direct_beam_ratio], rel]) * peak_counts
    for (x, y), a in zip(pos, amp):
        x0, y0 = int(round(x)), int(round(y))
        ys, xs = slice(max(y0 - half, 0), min(y0 + half + 1, ny)), slice(max(x0 - half, 0), min(x0 + half + 1, nx))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        img[ys, xs] += a * np.exp(-((yy[ys, xs] - y) ** 2 + (xx[ys, xs] - x) ** 2) / (2 * spot_sigma_px**2))
    if rng is not None:
        img = rng.poisson(np.clip(img, 0, None)).astype(float) + rng.normal(0.0, read_noise, img.shape)
    if beam_stop:
        a = float(beam_stop.get("angle_rad", 0.0))
        w = float(beam_stop.get("width_px", 8.0))
        d = float(beam_stop.get("disk_px", 6.0))
        dx, dy = xx - cx, yy - cy
        along = dx * np.cos(a) + dy * np.sin(a)
        across = -dx * np.sin(a) + dy * np.cos(a)
        stop = ((along > 0) & (np.abs(across) < w / 2)) | (dx**2 + dy**2 < d**2)
        img[stop] = 0.0 if rng is None else np.abs(rng.normal(0.0, read_noise, int(stop.sum())))
    img = np.clip(img, 0.0, saturation if saturation is not None else None)
    return img.astype(dtype)
