"""Labelled synthetic SAED patterns: random phase, zone axis, in-plane angle and detector
conditions (noise, centre offset, beam stop, calibration error, distortion)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticSAED", "simulate_saed"]


@dataclass
class SyntheticSAED:
    """Simulated patterns and their answers.

    Attributes
    ----------
    images : numpy.ndarray
        (n, y, x) float32 counts.
    pixel_size_inv_nm : numpy.ndarray
        (n,) calibration a user would read from the file (1/nm per pixel), i.e. the true
        one times (1 + calibration error).
    true_pixel_size_inv_nm : numpy.ndarray
        (n,) true calibration.
    phase : list of str
    template : numpy.ndarray
        (n,) index of the (phase, zone) in the template bank used (-1 for "none").
    zone : numpy.ndarray
        (n, 3) [uvw].
    inplane_rad : numpy.ndarray
        (n,) in-plane angle of the zone's reference reflection, radians.
    symmetry_order : numpy.ndarray
        (n,) rotational symmetry of the zone pattern.
    centre_yx : numpy.ndarray
        (n, 2) true direct-beam position.
    """

    images: np.ndarray
    pixel_size_inv_nm: np.ndarray
    true_pixel_size_inv_nm: np.ndarray
    phase: list
    template: np.ndarray
    zone: np.ndarray
    inplane_rad: np.ndarray
    symmetry_order: np.ndarray
    centre_yx: np.ndarray


def simulate_saed(bank, n: int, *, shape=(256, 256), seed: int = 0, calibration_error: float = 0.03,
                  centre_offset_px: float = 10.0, beam_stop_p: float = 0.7, none_fraction: float = 0.0,
                  pixel_size_range=(0.055, 0.075), thickness_range_nm=(5.0, 20.0), tilt_sigma_rad: float = 0.002,
                  ellipticity_max: float = 0.01, counts_range=(300.0, 5000.0)) -> SyntheticSAED:
    """Random labelled SAED patterns of the zones in a template bank.

    Parameters
    ----------
    bank : mltem.diffraction.TemplateBank
        Phases and zone axes to draw from (uniformly over templates).
    n : int
        Number of patterns.
    shape : (int, int)
        Detector size in pixels.
    seed : int
    calibration_error : float
        The reported calibration is off by a uniform factor in [-err, +err].
    centre_offset_px : float
        Direct beam displaced uniformly within +-this from the detector centre.
    beam_stop_p : float
        Probability of a beam stop (random direction).
    none_fraction : float
        Share of patterns without any crystal (diffuse halo and noise only), label -1.
    pixel_size_range : (float, float)
        True calibration range, 1/nm per pixel (the pattern must reach g_max).
    thickness_range_nm : (float, float)
        Foil thickness (relrod length).
    tilt_sigma_rad : float
        Gaussian off-zone tilt.
    ellipticity_max : float
        Elliptical distortion up to this.
    counts_range : (float, float)
        Peak counts of the strongest spot (log-uniform).

    Returns
    -------
    SyntheticSAED
    """
    from mltem.diffraction import render_pattern, simulate_spots

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    ny, nx = shape
    imgs = np.empty((n, ny, nx), np.float32)
    out = {k: [] for k in ("px", "true", "phase", "t", "zone", "ang", "sym", "c")}
    g_hi = bank.settings.g_max_inv_nm * 1.3
    for i in range(n):
        px = rng.uniform(*pixel_size_range)
        c = (np.array([(ny - 1) / 2, (nx - 1) / 2]) + rng.uniform(-centre_offset_px, centre_offset_px, 2))
        stop = {"angle_rad": rng.uniform(0, 2 * np.pi), "width_px": rng.uniform(5, 10), "disk_px": rng.uniform(5, 9)} \
            if rng.random() < beam_stop_p else None
        counts = float(np.exp(rng.uniform(*np.log(counts_range))))
        if rng.random() < none_fraction:
            t, ph, zone, ang, sym = -1, "none", (0, 0, 0), 0.0, 1
            from mltem.diffraction import Spots

            spots = Spots(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3), int), np.zeros(0))
        else:
            t = int(rng.integers(len(bank)))
            p_i, z = bank.entries[t]
            phase = bank.phases[p_i]
            ph, zone, sym = phase.name, z.uvw, z.symmetry_order
            ang = rng.uniform(0, 2 * np.pi)
            spots = simulate_spots(phase, z.uvw, ang, g_max_inv_nm=g_hi, thickness_nm=rng.uniform(*thickness_range_nm),
                                   tilt_rad=tuple(rng.normal(0, tilt_sigma_rad, 2)), energy_ev=bank.settings.energy_ev)
        img = render_pattern(spots, shape=shape, pixel_size_inv_nm=px, centre_yx=c, spot_sigma_px=rng.uniform(0.9, 1.8),
                             peak_counts=counts, gamma=rng.uniform(0.4, 0.8), background_counts=rng.uniform(1, 20),
                             diffuse_counts=counts * rng.uniform(0.02, 0.2), beam_stop=stop,
                             ellipticity=rng.uniform(0, ellipticity_max), ellipse_angle_rad=rng.uniform(0, np.pi),
                             rng=rng)
        imgs[i] = img
        out["true"].append(px)
        out["px"].append(px * (1 + rng.uniform(-calibration_error, calibration_error)))
        for k, v in (("phase", ph), ("t", t), ("zone", zone), ("ang", ang), ("sym", sym), ("c", c)):
            out[k].append(v)
    return SyntheticSAED(imgs, np.array(out["px"]), np.array(out["true"]), out["phase"], np.array(out["t"]),
                         np.array(out["zone"], int).reshape(n, 3), np.array(out["ang"]), np.array(out["sym"]),
                         np.array(out["c"]))
