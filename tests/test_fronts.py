"""Front tracking, Kalman smoothing and growth-law kinetics: known answers from the forward model."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.fronts import (
    axis_from_points,
    fit_growth_law,
    front_positions,
    growth_verdict,
    kalman_smooth,
    measure_drift,
    track_fronts,
)
from mltem.simulate import simulate_front_movie


def _rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


# Realistic noise: 60 counts/px background (shot noise ~13 % per px), 1 px blur, drift.
@pytest.mark.parametrize("geometry, shape, seed, n", [
    ("wire", (128, 256), 3, 0.5),
    ("wire", (128, 256), 11, 1.0),
    ("core-shell", (128, 128), 3, 0.5),
    ("planar", (128, 128), 3, 0.8),
])
def test_classical_tracker_known_fronts(geometry, shape, seed, n):
    m = simulate_front_movie(geometry, shape=shape, seed=seed, n=n, n_frames=40, fluctuation=0.0)
    tr = track_fronts(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
    assert tr.axis.geometry == geometry
    # issue target: <= 2 px RMS position error
    assert _rms(tr.measured_px, m.front_px) <= 2.0
    assert _rms(tr.position_nm / m.pixel_size_nm, m.front_px) <= 2.0
    assert np.all(tr.position_std_nm > 0)
    fit = fit_growth_law(tr.time_s, tr.measured_nm, bootstrap=0)
    assert abs(fit.n - n) <= 0.05  # issue target


def test_front_positions_exact_step():
    # a blurred step at known sub-pixel positions with levels 3 (reacted) and 1
    from scipy.special import erfc

    s = np.arange(100)
    truth = np.array([0.0, 10.3, 25.7, 50.5, 80.25])
    K = 1 + 2 * 0.5 * erfc((s[None] - truth[:, None] + 0.0) / 2.0)
    K[0] = 1.0
    pos = front_positions(K)
    assert_allclose(pos[1:], truth[1:], atol=0.05)
    assert pos[0] < 0.5
    with pytest.raises(ValueError, match="kymograph must be"):
        front_positions(np.zeros(5))


def test_drift_known_shift():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    ref = ndimage.gaussian_filter(rng.standard_normal((96, 96)), 1.5)
    frames = np.stack([ref, ndimage.shift(ref, (1.5, -2.25), order=3, mode="wrap")])
    d = measure_drift(frames, ref)
    assert_allclose(d[1], [1.5, -2.25], atol=0.15)


def test_drift_ignores_a_changing_specimen():
    # support texture drifting by a known random walk; a large specimen in the middle whose
    # strong texture moves on its own (a reacting particle): registering on the whole frame
    # follows the specimen, registering on the support (``ignore``) follows the true drift
    from scipy import ndimage

    from mltem.fronts import specimen_zone

    rng = np.random.default_rng(4)
    H = W = 128
    support = ndimage.gaussian_filter(rng.standard_normal((H, W)), 1.0)
    blob = ndimage.gaussian_filter(rng.standard_normal((H, W)), 1.0) * 6
    yy, xx = np.mgrid[0:H, 0:W]
    inside = (yy - 64) ** 2 + (xx - 64) ** 2 < 40**2
    truth = np.cumsum(rng.normal(0, 0.4, (12, 2)), axis=0)
    truth[0] = 0
    frames = []
    for t, (dy, dx) in enumerate(truth):
        s = ndimage.shift(support, (dy, dx), order=3, mode="wrap")
        own = ndimage.shift(blob, (dy + 0.8 * t, dx - 0.6 * t), order=3, mode="wrap")
        frames.append(np.where(inside, own, s))
    frames = np.array(frames)
    zone = specimen_zone(inside, margin_fraction=0.05)
    # the dilation by 0.05 x 128 = 6 px, computed on a coarse grid: within a few % of exact
    exact = (yy - 64) ** 2 + (xx - 64) ** 2 < 46**2
    assert zone[inside].all() and abs(zone.sum() / exact.sum() - 1) < 0.08
    assert not specimen_zone(np.zeros((64, 64), bool)).any()
    d = measure_drift(frames, frames[0], ignore=zone)
    assert np.abs(d - truth).max() < 0.3
    d_all = measure_drift(frames, frames[0], ignore=None)
    assert np.abs(d_all - truth).max() > 1.0  # the specimen's own motion would be reported
    with pytest.raises(ValueError, match="ignore must have"):
        measure_drift(frames, frames[0], ignore=inside[:10])


def test_drift_search_stays_near_the_previous_frame():
    # a periodic support: the correlation has equal peaks one period apart; the continuity
    # limit keeps the track on the right one as the drift grows past half a period
    from scipy import ndimage

    yy, xx = np.mgrid[0:96, 0:96]
    rng = np.random.default_rng(1)
    ref = np.cos(2 * np.pi * xx / 12.0) + 0.2 * ndimage.gaussian_filter(rng.standard_normal((96, 96)), 1.0)
    truth = np.array([[0.0, 0.8 * t] for t in range(12)])  # up to 8.8 px: beyond half a period
    frames = np.stack([ndimage.shift(ref, s, order=3, mode="wrap") for s in truth])
    d = measure_drift(frames, ref, max_step_px=3.0)
    assert_allclose(d[:, 1], truth[:, 1], atol=0.3)


def test_kalman_known_trajectory():
    rng = np.random.default_rng(0)
    t = np.arange(200) * 0.1
    x = 5 + 3 * t  # constant velocity: the model is exact
    z = x + rng.normal(0, 0.5, t.size)
    k = kalman_smooth(t, z, measurement_std=0.5)
    # the smoother beats the raw measurements and its std is honest (~ the real error)
    assert _rms(k.position, x) < 0.5 / 3
    err = (k.position - x) / k.position_std
    assert 0.4 < np.std(err) < 1.6
    assert_allclose(k.velocity[20:-20], 3.0, atol=0.2)
    assert abs(kalman_smooth(t, z).measurement_std - 0.5) < 0.1  # estimated from the data
    z[50] = np.nan  # a missing frame is bridged
    assert np.isfinite(kalman_smooth(t, z).position[50])
    with pytest.raises(ValueError, match="strictly increasing"):
        kalman_smooth([0, 0], [1, 2])
    with pytest.raises(ValueError, match="no finite"):
        kalman_smooth([0, 1], [np.nan, np.nan])


@pytest.mark.parametrize("n", [0.35, 0.5, 1.0, 1.2])
def test_kinetics_recovers_exact_law(n):
    t = np.linspace(0, 20, 41)
    x = 2.0 + 7.5 * t**n
    fit = fit_growth_law(t, x, bootstrap=0)
    assert_allclose([fit.n, fit.k, fit.x0], [n, 7.5, 2.0], rtol=1e-5, atol=1e-5)
    assert fit.ci["n"][0] <= n <= fit.ci["n"][1]


def test_kinetics_noise_ci_and_verdict():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 20, 60)
    x = 40 * t**0.5 + rng.normal(0, 1.0, t.size)
    fit = fit_growth_law(t, x, bootstrap=100, seed=0)
    assert abs(fit.n - 0.5) < 0.03
    assert fit.bootstrap_ci["n"][0] < fit.n < fit.bootstrap_ci["n"][1]
    assert fit.verdict == "diffusion-controlled"
    assert_allclose(fit.velocity([4.0]), 40 * 0.5 * 4.0 ** -0.5, rtol=0.1)
    d = fit.to_dict()
    assert d["exponent"] == d["n"] and d["warning"] is None


def test_kinetics_ar1_fluctuations():
    # a law with AR(1) fluctuations (rho 0.7): the GLS fit finds rho, recovers n, and its
    # interval is wider than the independent-residual fit's, which is too narrow for
    # correlated residuals
    rng = np.random.default_rng(3)
    t = np.linspace(0, 50, 400)
    e = np.zeros(t.size)
    z = rng.normal(0, 1.0, t.size)
    for i in range(1, t.size):
        e[i] = 0.7 * e[i - 1] + z[i]
    x = 3.0 + 10 * t**0.6 + e
    fit = fit_growth_law(t, x, bootstrap=50, seed=0)
    ind = fit_growth_law(t, x, bootstrap=0, residuals="independent")
    assert 0.55 <= fit.autocorrelation <= 0.85
    assert ind.autocorrelation == 0.0
    assert abs(fit.n - 0.6) < 0.02
    assert fit.ci["n"][0] <= 0.6 <= fit.ci["n"][1]
    assert np.ptp(fit.ci["n"]) > 1.5 * np.ptp(ind.ci["n"])
    assert fit.bootstrap_ci["n"][0] < fit.n < fit.bootstrap_ci["n"][1]
    assert fit.to_dict()["autocorrelation"] == fit.autocorrelation
    # white residuals: no autocorrelation, the ordinary fit is kept
    w = fit_growth_law(t, 3.0 + 10 * t**0.6 + z, bootstrap=0)
    assert w.autocorrelation < 0.2
    with pytest.raises(ValueError, match="residuals must be"):
        fit_growth_law(t, x, residuals="ar2")


def test_growth_verdicts():
    assert growth_verdict((0.45, 0.55)) == "diffusion-controlled"
    assert growth_verdict((0.9, 1.1)) == "reaction-controlled"
    assert growth_verdict((0.6, 0.8)) == "mixed"
    assert growth_verdict((0.3, 1.3)) == "undetermined"
    assert growth_verdict((0.2, 0.3)) == "sub-diffusive"
    assert growth_verdict((1.3, 1.5)) == "accelerating"
    assert growth_verdict((np.nan, 1.0)) == "undetermined"


def test_kinetics_few_points_and_errors():
    fit = fit_growth_law([0, 1, 2, 3, 4, 5], [0, 1, 1.4, 1.7, 2, 2.2], bootstrap=0)
    assert np.isfinite(fit.n) and "poorly constrained" in fit.to_dict()["warning"]
    fit = fit_growth_law([0, 1, 2], [0, 1, 2], bootstrap=0)
    assert np.isnan(fit.n) and "no fit" in fit.warnings[0]
    with pytest.raises(ValueError, match="same length"):
        fit_growth_law([0, 1], [0])
    with pytest.raises(ValueError, match="confidence"):
        fit_growth_law([0, 1], [0, 1], confidence=2)
    with pytest.raises(ValueError, match="t0 must be"):
        fit_growth_law([0, 1], [0, 1], t0="start")


def test_tracker_errors_and_axis_override():
    m = simulate_front_movie("wire", shape=(64, 128), seed=2, n_frames=12, angle_deg=0.0, bend=0.0, drift_px=0.0,
                             front_contrast=-0.35)
    y = m.params["contact_xy"][1]
    ax = axis_from_points(0, y, 120, y, half_width_px=0.5 * m.params["radius_px"])
    tr = track_fronts(m.frames, pixel_size_nm=2.0, frame_time_s=0.5, axis=ax)
    assert _rms(tr.measured_px, m.front_px) <= 2.0
    with pytest.raises(ValueError, match="at least 2 frames"):
        track_fronts(m.frames[:1])
    with pytest.raises(ValueError, match="mode must be"):
        track_fronts(m.frames, mode="texture")
    with pytest.raises(ValueError, match="pixel_size_nm"):
        track_fronts(m.frames, pixel_size_nm=0)
    with pytest.raises(ValueError, match="straight axis"):
        axis_from_points(0, 0, 10, 0, geometry="core-shell")


# Lattice-resolved movie: 6 % expanded lattice behind a planar front, shot noise 60 counts/px,
# drift; the front is the half-way point of GPA's smoothed dilatation step. Frames whose
# front lies within GPA's edge margin (plus the smoothing ramp) are not measured (NaN).
@pytest.mark.parametrize("angle_deg, n, period", [(20.0, 0.5, 6.0), (-35.0, 0.8, 5.0)])
def test_lattice_front_from_gpa_strain(angle_deg, n, period):
    m = simulate_front_movie("lattice", shape=(160, 160), n_frames=30, n=n, angle_deg=angle_deg,
                             lattice_period_px=period, seed=10**6 + 5100)
    tr = track_fronts(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
    assert tr.mode == "lattice" and tr.axis.geometry == "planar"
    d = tr.axis.points[-1] - tr.axis.points[0]
    assert abs(np.degrees(np.arctan2(d[1], d[0])) - angle_deg) < 2.0
    ok = np.isfinite(tr.measured_px)
    assert ok.sum() >= 18 and not ok[0]  # frame 0: the front sits at the field's edge
    # the Kalman track covers the measured span only (no extrapolation of the motion model)
    span = slice(np.nonzero(ok)[0][0], np.nonzero(ok)[0][-1] + 1)
    assert np.all(np.isfinite(tr.position_nm[span])) and np.isnan(tr.position_nm[0])
    assert _rms(tr.position_nm[span] / m.pixel_size_nm, m.front_px[span]) <= 2.0
    assert _rms(tr.measured_px[ok], m.front_px[ok]) <= 2.0  # issue target
    # drift from the phases of the unreacted lattice ahead of the front (held once the
    # front has crossed most of the field)
    assert_allclose(tr.drift_px[:20], m.drift_px[:20], atol=0.3)
    assert_allclose(tr.drift_px, m.drift_px, atol=1.0)
    # the front enters at the field's edge at t = 0, which GPA cannot see: fix (t0, x0) = (0, 0)
    fit = fit_growth_law(tr.time_s, tr.measured_nm, t0=0.0, x0=0.0, bootstrap=0)
    assert abs(fit.n - n) <= 0.05


def test_lattice_detection_and_errors():
    from mltem.fronts import is_lattice_image

    for period in (4.0, 6.0, 9.0):
        lat = simulate_front_movie("lattice", shape=(96, 96), n_frames=2, lattice_period_px=period, seed=1)
        assert is_lattice_image(lat.frames[0])
    for geometry, shape in (("wire", (64, 128)), ("wire", (160, 320)), ("core-shell", (48, 48)), ("planar", (128, 128))):
        assert not is_lattice_image(simulate_front_movie(geometry, shape=shape, n_frames=2, seed=1).frames[0])
    lat = simulate_front_movie("lattice", shape=(96, 96), n_frames=4, seed=1)
    with pytest.raises(ValueError, match="lattice mode tracks planar fronts"):
        track_fronts(lat.frames, mode="lattice", geometry="wire")
    with pytest.raises(ValueError, match="image must be"):
        is_lattice_image(lat.frames)


def _sphere_image(radius, centre, *, shape=(128, 128), mu=0.0025, sub=4):
    """Projected sphere (absorption exp(-mu t), 15 % darker material), 4x supersampled, 1 px blur."""
    from scipy import ndimage

    H, W = shape
    yy, xx = np.mgrid[0 : H * sub, 0 : W * sub]
    rho = np.hypot((xx + 0.5) / sub - 0.5 - centre[0], (yy + 0.5) / sub - 0.5 - centre[1])
    thick = 2 * np.sqrt(np.clip(radius**2 - rho**2, 0, None))
    img = np.where(rho < radius, 0.85 * np.exp(-mu * thick), 1.0)
    return ndimage.gaussian_filter(img.reshape(H, sub, W, sub).mean(axis=(1, 3)), 1.0)


@pytest.mark.parametrize("radius", [30.3, 41.7])
def test_particle_edge_rules(radius):
    # The interior of a thick sphere is darker than the material just inside its edge, so
    # the half-way level lies low on the edge: the half-way crossing sits 0.6-0.9 px inside.
    # The steepest point of the edge is within 0.2 px (the sqrt thickness profile's rise
    # next to the edge, blurred, pulls it in by about 0.15 px).
    from mltem.fronts import detect_axis

    img = _sphere_image(radius, (64.2, 63.7))
    grad = detect_axis(img, geometry="core-shell")
    half = detect_axis(img, geometry="core-shell", edge="halfway")
    assert abs(grad.radius_px - radius) <= 0.2
    assert half.radius_px - radius < -0.5
    assert_allclose(grad.centre, (64.2, 63.7), atol=0.1)
    with pytest.raises(ValueError, match="edge must be"):
        detect_axis(img, edge="steepest")


def test_wire_contact_found_where_contrast_and_thickness_cancel():
    # A brighter reacted phase cancels most of the extra thickness: inside the wire the
    # elongating far end changes more than the reacting contact end. The swelling just
    # outside the wire still marks the contact. (This seed's origin was 185 px off, at the
    # far end, when only the inside of the wire voted.)
    m = simulate_front_movie("wire", shape=(128, 256), n_frames=30, n=0.8, front_contrast=0.25, seed=35,
                             fluctuation=0.0)
    tr = track_fronts(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
    assert np.hypot(*(tr.axis.points[0] - np.asarray(m.params["contact_xy"]))) <= 2.0
    assert _rms(tr.measured_px, m.front_px) <= 2.0


def test_front_positions_row_without_a_step_reads_zero():
    # Frame 0 (nothing reacted) with a coarse guess 25 px out, e.g. from a kymograph smoothed
    # over frames while the front jumps: the sub-pixel window is re-centred until the position
    # settles, at 0 (two re-centrings stopped at 7.5 px). Rows with a step are unchanged.
    from scipy.special import erfc

    s = np.arange(120)
    truth = np.array([0.0, 30.4, 33.7, 36.2, 60.5])
    K = 1 + 2 * 0.5 * erfc((s[None] - truth[:, None]) / 2.0)
    K[0] = 1.0
    pos = front_positions(K, guess=[25.0, 30.0, 34.0, 36.0, 60.0], search_px=4)
    assert_allclose(pos, truth, atol=0.05)
