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


# --- session-wide (shared) calibration -----------------------------------------------------------

@pytest.fixture(scope="module")
def layered_bank():
    return build_templates([load_phase(n) for n in ("Si", "Cu", "LiCoO2", "NMC111")])


def _zone_pattern(bank, name, zone, angle_deg, seed, px):
    phase = next(p for p in bank.phases if p.name == name)
    rng = np.random.default_rng(seed)
    sp = simulate_spots(phase, zone, np.radians(angle_deg), g_max_inv_nm=12.0, thickness_nm=10.0)
    return render_pattern(sp, shape=(256, 256), pixel_size_inv_nm=px, centre_yx=(129.3, 126.1), rng=rng,
                          peak_counts=1500, beam_stop={"angle_rad": 1.0 + seed, "width_px": 8, "disk_px": 7})


def test_shared_calibration_resolves_layered_twin(layered_bank):
    """A stack with one common calibration error of +2.5 %: the series' factor is recovered
    within 0.3 %, and a LiCoO2 pattern that alone is taken for NMC111 (cells 1.2-1.6 % apart,
    inside the +-3.5 % search) is indexed right within the shared window."""
    from mltem.diffraction import index_series, match_templates, prepare_pattern

    px, err = 0.065, 0.025
    stack = [("Si", (1, 1, 0), 37.0), ("Si", (1, 0, 0), 71.5), ("Cu", (1, 1, 0), 150.0), ("Cu", (1, 0, 0), 12.0),
             ("Si", (2, 1, 1), 80.0), ("LiCoO2", (1, 0, 0), 20.0)]
    preps = [prepare_pattern(_zone_pattern(layered_bank, n, z, a, k, px), px * (1 + err), layered_bank.settings)
             for k, (n, z, a) in enumerate(stack)]
    alone = match_templates(preps[-1], layered_bank)
    assert alone.reliability < 0.05  # ambiguous on its own (it even picks NMC111)
    per, _, none_shared, per_modes = index_series(preps, layered_bank, calibration="per-pattern")
    assert none_shared is None and per_modes == ["per-pattern"] * 6
    assert (per[-1].phase, per[-1].zone) == (alone.phase, alone.zone)
    res, conf, shared, modes = index_series(preps, layered_bank)
    assert np.isnan(conf).all()  # classical: no network confidence
    # true calibration = file * scale; no distortion here, so the only error is the spots' noise
    assert shared.scale == pytest.approx(1 / (1 + err), rel=0.003)
    assert shared.n_used >= 4 and shared.spread < 0.003
    assert modes == ["shared"] * 6
    assert [(r.phase, r.zone) for r in res] == [(n, z) for n, z, _ in stack]
    assert res[-1].reliability > alone.reliability
    d = abs(res[-1].inplane_deg - 20.0 % 180)
    assert min(d, 180 - d) < 1.0


def _result(phase, scale, reliability):
    from mltem.diffraction import IndexResult

    return IndexResult(phase, (1, 0, 0), 0.0, 0.5, reliability, scale, (0.0, 0.0), 0)


def test_shared_calibration_robust_estimate():
    from mltem.diffraction import shared_calibration

    rng = np.random.default_rng(4)
    good = [_result("Si", s, 0.6) for s in 0.98 * (1 + rng.normal(0, 0.001, 15))]
    wrong = [_result("Cu", 1.03, 0.5), _result("Cu", 0.95, 0.4)]  # confidently wrong: outliers
    twins = [_result("LiCoO2", 1.01, 0.01)] * 5  # ambiguous: not used
    sc = shared_calibration(good + wrong + twins + [_result("none", 1.0, 0.9)])
    assert sc.scale == pytest.approx(0.98, rel=0.001)
    assert sc.n_candidates == 17 and sc.n_used == 15
    assert sc.spread == pytest.approx(0.001, rel=0.5)
    assert sc.sigma == pytest.approx(max(sc.spread, 0.0015))
    assert sc.as_dict()["percent_change"] == pytest.approx(-2.0, abs=0.1)
    # a known standard in the series: only its patterns set the factor
    assert shared_calibration(good + wrong, reference_phase="Cu", min_patterns=2).scale == pytest.approx(np.sqrt(1.03 * 0.95))
    few = shared_calibration(twins + good[:2])
    assert few.scale is None and "only 2 patterns" in few.note
    with pytest.raises(ValueError, match="min_patterns"):
        shared_calibration(good, min_patterns=0)
    with pytest.raises(ValueError, match="window"):
        shared_calibration(good, window=0.6)


def test_match_templates_calibration_window(bank):
    """Holding the calibration near its true value gives the same answer as the free search;
    holding it 3 % off loses the score; bad arguments are refused."""
    from mltem.diffraction import match_templates, prepare_pattern

    phase = next(p for p in bank.phases if p.name == "Si")
    px = 0.065
    sp = simulate_spots(phase, (1, 1, 0), np.radians(37.0), g_max_inv_nm=12.0, thickness_nm=10.0)
    img = render_pattern(sp, shape=(256, 256), pixel_size_inv_nm=px, centre_yx=(131.2, 124.6),
                         rng=np.random.default_rng(1), peak_counts=1500)
    prep = prepare_pattern(img, px * 1.02, bank.settings)
    free = match_templates(prep, bank)
    held = match_templates(prep, bank, scale=1 / 1.02, scale_window=0.005, scale_sigma=0.002)
    assert (held.phase, held.zone) == (free.phase, free.zone) == ("Si", (1, 1, 0))
    assert held.scale == pytest.approx(1 / 1.02, rel=0.003)
    assert held.inplane_deg == pytest.approx(free.inplane_deg, abs=0.3)
    assert held.score == pytest.approx(free.score, rel=0.05)
    off = match_templates(prep, bank, scale=1 / 1.02 * 1.03, scale_window=0.003)
    assert off.score < 0.8 * free.score
    with pytest.raises(ValueError, match="scale must be positive"):
        match_templates(prep, bank, scale=0.0)
    with pytest.raises(ValueError, match="scale_window"):
        match_templates(prep, bank, scale=1.0, scale_window=0.7)
    with pytest.raises(ValueError, match="scale_sigma"):
        match_templates(prep, bank, scale=1.0, scale_sigma=-1.0)


def test_fast_median_filter_matches_scipy():
    from scipy import ndimage

    from mltem.diffraction._preprocess import _median9

    x = np.random.default_rng(2).normal(size=(37, 64))
    np.testing.assert_array_equal(_median9(x), ndimage.median_filter(x, size=9, mode="nearest"))


def _stop_patterns(si, n):
    out = []
    for seed in range(n):
        rng = np.random.default_rng(100 + seed)
        c = (128.0 + rng.uniform(-9, 9), 127.0 + rng.uniform(-9, 9))
        sp = simulate_spots(si, (1, 1, 0), rng.uniform(0, 6), g_max_inv_nm=12.0, thickness_nm=10.0)
        img = render_pattern(sp, shape=(256, 256), pixel_size_inv_nm=0.06, centre_yx=c, rng=rng,
                             beam_stop={"angle_rad": rng.uniform(0, 6), "width_px": 8, "disk_px": 7})
        out.append((img, c))
    return out


def test_prepare_pattern_centre_and_worker_processes_agree(si):
    from mltem.diffraction import IndexPool, prepare_pattern

    pats = _stop_patterns(si, 4)
    one = [prepare_pattern(img, 0.06) for img, _ in pats]
    for p, (_, c) in zip(one, pats):
        # the prepared centre: coarse Friedel correlation + Friedel-pair refinement of the same spots
        assert np.hypot(p.centre_yx[0] - c[0], p.centre_yx[1] - c[1]) < 0.25
        assert p.n_spots >= 6
    bank = build_templates([si])
    answers = {}
    for jobs in (1, 2):
        with IndexPool(bank, jobs=jobs) as pool:
            answers[jobs] = pool.index([img for img, _ in pats], [0.06] * len(pats), keep=True)
    for a, b, p in zip(answers[1], answers[2], one):
        assert a.result.centre_yx == b.result.centre_yx == p.centre_yx
        assert (a.result.phase, a.result.zone, a.result.inplane_deg) == (b.result.phase, b.result.zone, b.result.inplane_deg)
        assert a.result.phase == "Si" and a.mode == "per-pattern"
        np.testing.assert_array_equal(b.prep.polar, p.polar)
    with pytest.raises(ValueError, match="pixel sizes"):
        IndexPool(bank, jobs=1).index([pats[0][0]], [0.06, 0.06])
    with pytest.raises(ValueError, match="jobs"):
        IndexPool(bank, jobs=0)


def test_fast_friedel_shift_and_local_maxima_match_skimage():
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.registration import phase_cross_correlation

    from mltem.diffraction._preprocess import _friedel_shift, _local_maxima

    rng = np.random.default_rng(3)
    for _ in range(20):
        ny, nx = rng.integers(20, 70, 2)
        a = rng.random((ny, nx)) ** 4
        valid = rng.random((ny, nx)) > 0.1
        ref = phase_cross_correlation(a, a[::-1, ::-1], reference_mask=valid, moving_mask=valid[::-1, ::-1],
                                      overlap_ratio=0.3)
        np.testing.assert_array_equal(_friedel_shift(a, valid), np.asarray(ref[0] if isinstance(ref, tuple) else ref))
        for dtype in (np.float32, np.float64):  # OpenCV dilation and the windowed fallback
            sm = ndimage.gaussian_filter(a, 1.0).astype(dtype)
            thr = np.percentile(sm, 80)
            got = _local_maxima(sm, thr, min_distance=3, border=2, max_peaks=50)
            want = peak_local_max(sm, min_distance=3, threshold_abs=thr, exclude_border=2, num_peaks=50)
            assert {tuple(p) for p in got} == {tuple(p) for p in want}


def test_opencv_gaussian_matches_scipy():
    from scipy import ndimage

    from mltem.diffraction._preprocess import _gaussian

    rng = np.random.default_rng(1)
    a = rng.random((64, 90)).astype(np.float32)
    np.testing.assert_allclose(_gaussian(a, 2.0), ndimage.gaussian_filter(a, 2.0), atol=1e-6)
    np.testing.assert_allclose(_gaussian(a, (1.0, 0.8), wrap_x=True),
                               ndimage.gaussian_filter(a, (1.0, 0.8), mode=("nearest", "wrap")), atol=1e-6)


def test_polar_transform_mask_matches_full_interpolation():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    a = rng.random((128, 128))
    mask = np.zeros(a.shape, bool)
    mask[60:70, 64:] = True  # a beam-stop rod
    c, px = (64.3, 63.6), 0.12
    polar, valid = polar_transform(a, c, px, n_r=64, n_theta=90, mask=mask)
    rho = np.linspace(np.log(1.5), np.log(9.0), 64)
    th = np.arange(90) * (2 * np.pi / 90)
    r = np.exp(rho)[:, None] / px
    y, x = c[0] + r * np.sin(th), c[1] + r * np.cos(th)
    inside = (y >= 0) & (y <= 127) & (x >= 0) & (x <= 127)
    m = ndimage.map_coordinates(mask.astype(float), [y, x], order=1, mode="constant", cval=1.0)
    np.testing.assert_array_equal(valid, inside & (m < 0.5))
    assert (~valid & inside).sum() > 20  # the rod does cut samples
