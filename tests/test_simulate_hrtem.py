"""Tests of the synthetic HRTEM/HAADF lattice generator (mltem.simulate)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.simulate import (
    EdgeDislocation,
    Interface,
    Lattice,
    LithiatedRegion,
    StrainGradient,
    UniformStrain,
    simulate_lattice,
    simulate_lattice_movie,
)

FIELDS = [
    UniformStrain(exx=0.01, eyy=-0.02, exy=0.005, rotation=0.03, center_nm=(1.0, 1.0)),
    StrainGradient(exx_per_nm=0.01, eyy_per_nm=-0.02, center_nm=(1.0, 1.0)),
    EdgeDislocation(1.0, 1.2, burgers_nm=(0.1, 0.25)),
    LithiatedRegion(1.0, 1.0, radius_nm=0.8, expansion=0.04, width_nm=0.3),
    Interface(offset_nm=0.1, angle_deg=30, misfit=0.05, width_nm=0.3, center_nm=(1.0, 1.0)),
]


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: type(f).__name__)
def test_distortion_is_the_gradient_of_the_displacement(field):
    rng = np.random.default_rng(0)
    y, x = rng.uniform(0, 2, 50), rng.uniform(0, 2, 50)
    # LithiatedRegion's u_r is interpolated from a 1D integral on a ~1e-4 nm grid: step over it
    h = 1e-3 if isinstance(field, LithiatedRegion) else 1e-5
    uy1, ux1 = field.displacement(y, x + h)
    uy0, ux0 = field.displacement(y, x - h)
    uy3, ux3 = field.displacement(y + h, x)
    uy2, ux2 = field.displacement(y - h, x)
    num = np.stack([(ux1 - ux0), (ux3 - ux2), (uy1 - uy0), (uy3 - uy2)]) / (2 * h)
    # central differences: ~1e-8 with h = 1e-5 nm; about h^2 |u'''| / 6 ~ 1e-7 for the disc
    assert_allclose(np.stack(field.distortion(y, x)), num, atol=2e-6)


def test_uniform_strain_is_returned_exactly():
    sim = simulate_lattice((64, 64), fields=[UniformStrain(exx=0.01, eyy=-0.02, exy=0.005, rotation=0.03)])
    assert_allclose(sim.strain.reshape(4, -1).mean(1), [0.01, -0.02, 0.005, 0.03], atol=1e-12)
    assert sim.image.dtype == np.float32 and sim.image.shape == (64, 64)


def test_lithiated_plateau_and_interface_misfit():
    sim = simulate_lattice((128, 128), pixel_size_nm=0.02, fields=[LithiatedRegion(1.28, 1.28, radius_nm=0.8, expansion=0.04, width_nm=0.1)])
    assert_allclose(sim.strain[:, 64, 64], [0.04, 0.04, 0, 0], atol=1e-6)
    iface = simulate_lattice((128, 128), pixel_size_nm=0.02, fields=[Interface(misfit=0.05, width_nm=0.05)])
    assert_allclose(iface.strain[:, 64, 120], [0.05, 0, 0, 0], atol=1e-6)
    assert_allclose(iface.strain[:, 64, 5], [0, 0, 0, 0], atol=1e-6)
    assert iface.phase_map[:, :60].max() == 0 and iface.phase_map[:, 70:].min() == 1


def test_lattice_reciprocal_vectors():
    lat = Lattice(a_nm=0.3, b_nm=0.25, gamma_deg=75, angle_deg=20)
    assert_allclose(lat.g_vectors @ lat.vectors_nm.T, np.eye(2), atol=1e-12)
    assert_allclose(np.hypot(*lat.vectors_nm[0]), 0.3)
    assert len(lat.reflections()) > 4


def test_image_is_the_deformed_lattice():
    # A uniformly expanded lattice has its fringes at the expanded spacing.
    lat = Lattice(a_nm=0.32, b_nm=0.32, atom_sigma_nm=0.08, g_max_per_nm=3.5)
    sim = simulate_lattice((200, 200), pixel_size_nm=0.02, lattice=lat, fields=[UniformStrain(exx=0.25, eyy=0.25)], mode="haadf")
    spec = np.abs(np.fft.rfft(sim.image.mean(axis=0) - sim.image.mean()))
    k = np.argmax(spec)  # fringes: 0.32 * 1.25 nm = 20 px -> 10 periods in 200 px
    assert k == 10


def test_dose_gives_poisson_counts():
    sim = simulate_lattice((128, 128), pixel_size_nm=0.02, dose_e_per_nm2=1e5, seed=3)
    assert_allclose(sim.image.mean(), 1e5 * 0.02**2, rtol=0.02)
    assert np.all(sim.image == np.round(sim.image))
    again = simulate_lattice((128, 128), pixel_size_nm=0.02, dose_e_per_nm2=1e5, seed=3)
    assert np.array_equal(sim.image, again.image)


def test_noise_options_change_the_image_but_not_the_truth():
    clean = simulate_lattice((96, 96), fields=[UniformStrain(exx=0.01)])
    noisy = simulate_lattice((96, 96), fields=[UniformStrain(exx=0.01)], amorphous=0.2, defocus_nm=-50, thickness=0.2,
                             scan_jitter_px=0.5, scan_drift=0.01)
    assert not np.allclose(clean.image, noisy.image)
    assert_allclose(clean.strain, noisy.strain)


def test_movie_drifts():
    frames = list(simulate_lattice_movie(2, (64, 64), drift_nm_per_frame=(0.1, 0.0), dose_e_per_nm2=1e5))
    assert frames[1].shift_nm == (0.1, 0.0)
    assert frames[0].image.shape == (64, 64)


def test_dislocation_cores_reported():
    sim = simulate_lattice((64, 64), fields=[EdgeDislocation(0.5, 0.6, burgers_nm=(0.0, 0.3))], shift_nm=(0.1, 0.0))
    assert_allclose(sim.dislocations, [(0.6, 0.6)])


def test_errors():
    with pytest.raises(ValueError, match="shape must be"):
        simulate_lattice((4, 4))
    with pytest.raises(ValueError, match="mode must be"):
        simulate_lattice((32, 32), mode="sem")
    with pytest.raises(ValueError, match="dose_e_per_nm2 must be > 0"):
        simulate_lattice((32, 32), dose_e_per_nm2=-1)
    with pytest.raises(ValueError, match="pixel_size_nm must be > 0"):
        simulate_lattice((32, 32), pixel_size_nm=0)
    with pytest.raises(ValueError, match=">= 0"):
        simulate_lattice((32, 32), amorphous=-1)
    with pytest.raises(TypeError, match="displacement fields"):
        simulate_lattice((32, 32), fields=["strain"])
    with pytest.raises(ValueError, match="parallel"):
        Lattice(gamma_deg=0)
    with pytest.raises(ValueError, match="must be > 0"):
        Lattice(a_nm=0)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        next(simulate_lattice_movie(0))
    with pytest.raises(ValueError, match="burgers_nm must be non-zero"):
        EdgeDislocation(burgers_nm=(0, 0)).distortion(np.zeros(1), np.zeros(1))
