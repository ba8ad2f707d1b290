"""Known-answer tests of mltem.diffraction: simulator, preprocessing and the classical indexer."""
from __future__ import annotations

import numpy as np
import pytest

from mltem._errors import MltemError
from mltem.diffraction import (
    build_templates,
    calibrate_from_standard,
    correct_ellipse,
    electron_scattering_factor,
    electron_wavelength_nm,
    find_centre,
    fit_ellipse,
    index_pattern,
    invalid_mask,
    load_phase,
    pixel_size_from_camera,
    polar_transform,
    reflections,
    render_pattern,
    simulate_spots,
    zone_axes,
)


@pytest.fixture(scope="module")
def si():
    return load_phase("Si")


def test_wavelength_and_camera_calibration():
    # 200 kV: lambda = 2.5079 pm (relativistic); 14 um pixels at L = 100 mm -> 14e-3 / (lambda L)
    assert electron_wavelength_nm(200.0) == pytest.approx(2.5079e-3, rel=1e-4)
    px = pixel_size_from_camera(camera_length_mm=100.0, detector_pixel_um=14.0, energy_ev=200e3)
    assert px == pytest.approx(14e-3 / (2.5079e-3 * 100.0), rel=1e-4)
    assert pixel_size_from_camera(camera_constant_nm_mm=0.25, detector_pixel_um=14.0) == pytest.approx(0.056)
    with pytest.raises(ValueError, match="exactly one"):
        pixel_size_from_camera(detector_pixel_um=14.0)


def test_scattering_factor_decreases_and_sums():
    f = electron_scattering_factor("Si", [0.0, 5.0, 10.0])
    assert f[0] == pytest.approx(5.8182, rel=1e-4)  # sum of the a_i of Si (Peng et al. 1996)
    assert np.all(np.diff(f) < 0)
    assert electron_scattering_factor("Co3+", 2.0) == pytest.approx(electron_scattering_factor("Co", 2.0))
    with pytest.raises(ValueError, match="no electron scattering factor"):
        electron_scattering_factor("Xx", 1.0)


def test_builtin_phases_and_symmetry(si):
    assert si.space_group == "Fd-3m"
    zones = {z.uvw: z for z in zone_axes(si)}
    assert zones[(1, 0, 0)].symmetry_order == 4
    assert zones[(1, 1, 1)].symmetry_order == 6
    assert zones[(1, 1, 0)].symmetry_order == 2
    # Si (200) is kinematically forbidden, (400) allowed
    hkl = {tuple(h) for h in reflections(si, 8.0).hkl}
    assert (2, 0, 0) not in hkl and (4, 0, 0) in hkl and (1, 1, 1) in hkl
    for name in ("graphite", "Li2O", "LiF", "Li", "Cu", "LiCoO2", "LiFePO4", "Li4Ti5O12", "NMC111"):
        assert len(zone_axes(load_phase(name))) >= 3 if name != "graphite" else 2


def test_load_phase_errors(tmp_path):
    with pytest.raises(MltemError, match="neither a CIF file nor a built-in phase"):
        load_phase("unobtainium")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 1\n")
    with pytest.raises(MltemError, match="cannot read the CIF"):
        load_phase(bad)
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    with pytest.raises(MltemError, match="must be a .cif"):
        load_phase(txt)


@pytest.mark.parametrize("cif,zone", [("Si", (1, 1, 0)), ("LiFePO4", (0, 0, 1)), ("graphite", (0, 0, 1))])
def test_simulator_matches_pymatgen_tem_calculator(cif, zone):
    """Spot spacings, angles between spots and the intensity ranking agree with pymatgen's TEMCalculator."""
    pytest.importorskip("pymatgen")
    import warnings

    from pymatgen.analysis.diffraction.tem import TEMCalculator
    from pymatgen.core import Structure
    from scipy.stats import spearmanr

    from mltem.diffraction._crystal import PHASES_DIR

    phase = load_phase(cif)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = TEMCalculator(beam_direction=zone).get_pattern(Structure.from_file(str(PHASES_DIR / f"{cif}.cif")))
    ref = {tuple(int(v) for v in h): (10.0 / d, i, np.asarray(p, float))
           for h, d, i, p in zip(df["(hkl)"], df["Interplanar Spacing"], df["Intensity (norm)"], df["Position"])}
    sp = simulate_spots(phase, zone, 0.3, g_max_inv_nm=6.0, thickness_nm=None)
    mine = {tuple(int(v) for v in h): (np.hypot(*xy), i, xy) for h, xy, i in zip(sp.hkl, sp.xy_inv_nm, sp.intensity)}
    common = [h for h in mine if h in ref and ref[h][1] > 1e-3]
    assert len(common) >= 6
    # |g| = 1/d to 1e-4 relative
    np.testing.assert_allclose([mine[h][0] for h in common], [ref[h][0] for h in common], rtol=1e-4)
    # the unsigned angle between any two spots is the same (both are projections of the same zone)
    a, b = common[0], common[1]
    for h in common[2:]:
        for x, y in ((a, h), (b, h)):
            cm = np.dot(mine[x][2], mine[y][2]) / (mine[x][0] * mine[y][0])
            cr = np.dot(ref[x][2], ref[y][2]) / np.linalg.norm(ref[x][2]) / np.linalg.norm(ref[y][2])
            assert cm == pytest.approx(cr, abs=1e-3)
    # intensity ranking (different scattering-factor parametrisations: Peng vs Mott-Bethe of X-ray factors)
    rho = spearmanr([mine[h][1] for h in common], [ref[h][1] for h in common]).statistic
    assert rho > 0.9


def test_excitation_error_and_holz(si):
    sp_thin = simulate_spots(si, (1, 1, 0), 0.0, g_max_inv_nm=8.0, thickness_nm=5.0)
    sp_thick = simulate_spots(si, (1, 1, 0), 0.0, g_max_inv_nm=8.0, thickness_nm=60.0)
    # at the zone axis s = -g^2 / 2k: outer spots fade faster in a thick foil
    k = 1 / electron_wavelength_nm(200.0)
    g = np.hypot(*sp_thin.xy_inv_nm.T)
    np.testing.assert_allclose(sp_thin.excitation_error, -(g**2) / (2 * k), rtol=1e-6)
    assert len(sp_thick) < len(sp_thin)
    # LiFePO4 [100] (a = 1.033 nm): the first-order Laue zone is a ring of radius sqrt(2 k / a)
    lfp = load_phase("LiFePO4")
    holz = simulate_spots(lfp, (1, 0, 0), 0.0, g_max_inv_nm=32.0, thickness_nm=5.0, holz=True, min_rel_intensity=1e-9)
    layer = holz.hkl @ np.array([1, 0, 0])
    assert set(np.unique(layer)) == {0, 1}
    ring = np.hypot(*holz.xy_inv_nm[layer == 1].T)
    a = np.linalg.norm(lfp.direct_matrix_nm[0])
    assert np.median(ring) == pytest.approx(np.sqrt(2 * k / a), rel=0.1)
    with pytest.raises(ValueError, match="exactly one of zone or rotation"):
        simulate_spots(si, g_max_inv_nm=5.0)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_centre_subpixel_with_beam_stop(si, dtype):
    errs = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        c = (128.0 + rng.uniform(-9, 9), 127.0 + rng.uniform(-9, 9))
        sp = simulate_spots(si, (1, 1, 0), rng.uniform(0, 6), g_max_inv_nm=12.0, thickness_nm=10.0)
        img = render_pattern(sp, shape=(256, 256), pixel_size_inv_nm=0.06, centre_yx=c, rng=rng,
                             beam_stop={"angle_rad": rng.uniform(0, 6), "width_px": 8, "disk_px": 7}, dtype=dtype)
        assert img.dtype == dtype
        got = find_centre(img, mask=invalid_mask(img))
        errs.append(np.hypot(got[0] - c[0], got[1] - c[1]))
    assert max(errs) < 0.25  # sub-pixel (noise-limited spot centroids)
    with pytest.raises(ValueError, match="2D"):
        find_centre(np.zeros(10))


def test_ellipse_fit_and_correction():
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    a, b, ang = 110.0, 100.0, 0.6
    x = a * np.cos(t) * np.cos(ang) - b * np.sin(t) * np.sin(ang) + 60
    y = a * np.cos(t) * np.sin(ang) + b * np.sin(t) * np.cos(ang) + 70
    e = fit_ellipse(np.stack([y, x], 1))
    assert e["ellipticity"] == pytest.approx(0.1, abs=1e-6)
    assert e["angle_rad"] == pytest.approx(ang, abs=1e-6)
    fixed = correct_ellipse(np.stack([y, x], 1), e["centre_yx"], ellipticity=e["ellipticity"], angle_rad=e["angle_rad"])
    r = np.hypot(fixed[:, 0] - 70, fixed[:, 1] - 60)
    np.testing.assert_allclose(r, 100.0, rtol=1e-6)
    with pytest.raises(ValueError, match="at least 5"):
        fit_ellipse(np.zeros((3, 2)))


def test_calibration_from_powder_standard():
    cu = load_phase("Cu")
    px_true = 0.031
    yy, xx = np.mgrid[0:400, 0:400]
    r = np.hypot(yy - 201.3, xx - 198.7) * px_true
    img = 200 * np.exp(-r / 1.5) + 5.0
    refl = reflections(cu, 12.0)
    for g in np.unique(np.round(refl.g_len, 4)):
        w = refl.intensity[np.isclose(refl.g_len, g, atol=1e-3)].sum()
        img += 40 * w / refl.intensity.max() * np.exp(-((r - g) ** 2) / (2 * (1.5 * px_true) ** 2))
    img = np.random.default_rng(0).poisson(img).astype(float)
    assert calibrate_from_standard(img, cu) == pytest.approx(px_true, rel=0.003)


def test_polar_transform_errors():
    with pytest.raises(ValueError, match="0 < g_min < g_max"):
        polar_transform(np.zeros((32, 32)), (16, 16), 0.1, g_min_inv_nm=2, g_max_inv_nm=1)


@pytest.fixture(scope="module")
def bank():
    return build_templates([load_phase(n) for n in ("Si", "LiFePO4", "graphite", "Cu")])


@pytest.mark.parametrize("cif,zone,angle_deg,cal_error", [
    ("Si", (1, 1, 0), 37.0, 0.03), ("Si", (1, 0, 0), 71.5, -0.03), ("LiFePO4", (0, 1, 0), 123.4, 0.02),
    ("graphite", (0, 0, 1), 12.3, -0.02), ("Cu", (1, 1, 0), 150.0, 0.0),
])
def test_index_known_orientation(bank, cif, zone, angle_deg, cal_error):
    """Right phase, zone and in-plane angle with a beam stop, noise, a centre offset and a calibration error."""
    phase = next(p for p in bank.phases if p.name == cif)
    rng = np.random.default_rng(1)
    px = 0.065
    sp = simulate_spots(phase, zone, np.radians(angle_deg), g_max_inv_nm=12.0, thickness_nm=10.0)
    img = render_pattern(sp, shape=(256, 256), pixel_size_inv_nm=px, centre_yx=(131.2, 124.6), rng=rng,
                         peak_counts=1500, beam_stop={"angle_rad": 2.0, "width_px": 8, "disk_px": 7})
    res = index_pattern(img, bank, px * (1 + cal_error))
    z = next(z for z in zone_axes(phase, g_max_inv_nm=bank.settings.g_max_inv_nm, max_zones=bank.settings.max_zones)
             if z.uvw == zone)
    period = 360 / z.symmetry_order
    d = abs(res.inplane_deg - angle_deg % period)
    assert (res.phase, res.zone) == (cif, zone)
    assert min(d, period - d) < 1.0
    # the calibration error is absorbed and measured: true = file * scale
    assert px * (1 + cal_error) * res.scale == pytest.approx(px, rel=0.006)
    assert 0 < res.reliability <= 1


def test_noise_only_pattern_is_not_forced(bank):
    from mltem.diffraction import Spots

    empty = Spots(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3), int), np.zeros(0))
    img = render_pattern(empty, shape=(256, 256), pixel_size_inv_nm=0.065, rng=np.random.default_rng(3))
    assert index_pattern(img, bank, 0.065).phase == "none"
