"""Known-answer tests of the synthetic hologram generator (mltem.simulate._hologram)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import constants

from mltem.holography import interaction_constant, laplacian
from mltem.simulate import (
    phase_charged_sphere,
    phase_line_charge,
    phase_mip_sphere,
    phase_potential_step,
    simulate_hologram,
)


def test_mip_sphere_centre_phase():
    # phase at the centre = C_E * V0 * 2a
    ph = phase_mip_sphere((65, 65), pixel_size_nm=0.5, radius_nm=10, mip_v=15)
    assert_allclose(ph[32, 32], interaction_constant(300) * 15 * 20e-9, rtol=1e-12)
    assert ph[0, 0] == 0


def test_charged_sphere_is_continuous_and_gauss():
    n, px, q = 201, 0.25, 25.0
    ph = phase_charged_sphere((n, n), pixel_size_nm=px, radius_nm=5, charge_e=q)
    # continuity at r = a: neighbouring pixels across the surface differ little
    assert np.max(np.abs(np.diff(ph[100]))) < 0.05
    # Gauss: -(eps0/C_E) * integral of Laplacian over a disc = Q (here with no smoothing)
    lap = laplacian(ph, pixel_size_nm=px)  # rad/nm^2
    yy, xx = np.mgrid[0:n, 0:n]
    disc = np.hypot(yy - 100, xx - 100) * px < 15
    total = -(constants.epsilon_0 / (interaction_constant(300) * constants.e)) * lap[disc].sum() * px**2
    assert_allclose(total, q, rtol=0.02)  # 2 %: discrete spectral Laplacian of a kinked profile


def test_line_charge_second_derivative():
    px = 0.2
    ph = phase_line_charge((64, 400), pixel_size_nm=px, charge_per_nm_e=0.3, width_nm=1.0, angle_rad=np.pi / 2)
    # line along y: phase varies along x; d2/dx2 = -(C_E lambda / eps0) * gaussian
    d2 = np.gradient(np.gradient(ph[32], px), px)  # rad/nm^2
    lam_per_nm = -(constants.epsilon_0 / (interaction_constant(300) * constants.e)) * d2.sum() * px
    assert_allclose(lam_per_nm, 0.3, rtol=0.01)


def test_potential_step_height():
    ph = phase_potential_step((200, 50), pixel_size_nm=1.0, step_v=0.8, thickness_nm=100, width_nm=3)
    assert_allclose(ph[-1, 0] - ph[0, 0], interaction_constant(300) * 0.8 * 100e-9, rtol=1e-6)


@pytest.mark.parametrize("dose", [None, 500.0])
def test_hologram_fringes_and_dose(dose):
    ph = np.zeros((128, 128))
    sim = simulate_hologram(ph, dose=dose, fringe_spacing_px=5.0, fringe_angle_rad=0.0, fresnel_px=None,
                            distortion_rad=0.0, seed=1)
    assert sim.hologram.dtype == np.float32 and sim.hologram.shape == (128, 128)
    assert_allclose(sim.sideband, (0.0, 128 / 5.0), atol=1e-9)
    mean = sim.hologram.mean()
    assert_allclose(mean, 1.0 if dose is None else dose, rtol=0.01)
    if dose is not None:
        assert np.all(sim.hologram == np.round(sim.hologram))  # counts


def test_fresnel_edges_modulate_intensity():
    sim = simulate_hologram(np.zeros((64, 256)), dose=None, fringe_angle_rad=0.0, contrast=0.01, overlap=0.8,
                            distortion_rad=0.0)
    profile = sim.reference.mean(axis=0)
    assert profile[:10].mean() < 0.75 and profile[-10:].mean() < 0.75  # outside the overlap: one beam
    assert profile[128] > 0.9


@pytest.mark.parametrize(
    "kwargs, match",
    [({"fringe_spacing_px": 2.0}, "fringe_spacing_px"), ({"contrast": 0.0}, "contrast"), ({"dose": -1.0}, "dose"),
     ({"amplitude": np.ones((3, 3))}, "amplitude shape")],
)
def test_hologram_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_hologram(np.zeros((32, 32)), **kwargs)


def test_phase_errors():
    with pytest.raises(ValueError, match="radius_nm"):
        phase_mip_sphere((32, 32), pixel_size_nm=1, radius_nm=0, mip_v=1)
    with pytest.raises(ValueError, match="pixel_size_nm"):
        phase_charged_sphere((32, 32), pixel_size_nm=0, radius_nm=1, charge_e=1)
    with pytest.raises(ValueError, match="width_nm"):
        phase_line_charge((32, 32), pixel_size_nm=1, charge_per_nm_e=1, width_nm=0)
    with pytest.raises(ValueError, match="shape"):
        phase_potential_step((4, 4), pixel_size_nm=1, step_v=1, thickness_nm=1, width_nm=1)
    with pytest.raises(ValueError, match="phase must be"):
        simulate_hologram(np.zeros(10))
