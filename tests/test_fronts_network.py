"""The network front tracker with the shipped ``fronts-unet`` model on held-out movies.

Held out: seeds >= 10**6 and a 144 x 288 px frame size, never used in training (training
used 128-px crops of other seeds and sizes). Skipped only if the model or onnxruntime
is missing.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem.fronts import FrontAxis, axis_from_points, fit_growth_law, track_fronts_network, width_kymograph
from mltem.simulate import simulate_front_movie

pytest.importorskip("onnxruntime")


def _shipped_model():
    from mltem.registry import find_model

    try:
        return find_model("fronts-unet", task="fronts")
    except Exception as exc:  # noqa: BLE001 - any failure to find it means: not shipped here
        pytest.skip(f"shipped model fronts-unet not available: {exc}")


def _rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _held_out_wire(contrast, n):
    return simulate_front_movie("wire", shape=(144, 288), n_frames=30, n=n, front_contrast=contrast,
                                seed=10**6 + 4444, fluctuation=0.0)


# Reacted darker: the network's reacted class and the wire's swelling both show the front.
# Reacted brighter: its contrast and its larger thickness cancel, and the front is found
# from the swelling of the network's material mask (the reacted class alone misses it).
@pytest.mark.parametrize("contrast, n, modes", [(-0.3, 0.5, ("mask", "mask+swelling")), (0.3, 0.8, ("swelling",))])
def test_shipped_model_tracks_held_out_wire(contrast, n, modes):
    _shipped_model()
    m = _held_out_wire(contrast, n)
    tr = track_fronts_network(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
    assert tr.method == "network" and tr.axis.geometry == "wire" and tr.mode in modes
    # issue targets: <= 2 px RMS position error, exponent within +-0.05
    assert _rms(tr.measured_px, m.front_px) <= 2.0
    assert _rms(tr.position_nm / m.pixel_size_nm, m.front_px) <= 2.0  # Kalman-smoothed
    assert np.all(tr.position_std_nm > 0) and tr.kalman.measurement_std > 0
    fit = fit_growth_law(tr.time_s, tr.measured_nm, bootstrap=0)
    assert abs(fit.n - n) <= 0.05


@pytest.mark.parametrize("scale", [1, 2])
def test_cli_network_uses_shipped_model(tmp_path, scale):
    import hyperspy.api as hs

    from mltem.cli import main

    card = _shipped_model()
    m = _held_out_wire(-0.3, 0.5)
    s = hs.signals.Signal2D(m.frames)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = m.pixel_size_nm, "nm"
    s.axes_manager.navigation_axes[0].scale = m.frame_time_s
    s.axes_manager.navigation_axes[0].units = "s"
    s.save(tmp_path / "wire.hspy")
    out = tmp_path / "out"
    assert main(["--quiet", "fronts", str(tmp_path / "wire.hspy"), "--method", "network", "--out", str(out),
                 "--bootstrap", "0", "--network-scale", str(scale)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"][0]["sha256"] == card.sha256 and summary["models"][0]["name"] == "fronts-unet"
    assert summary["parameters"]["method"] == "network" and summary["results"]["mode"] != "contrast"
    assert summary["parameters"]["network_scale"] == scale
    with open(out / "fronts.csv") as f:
        rows = list(csv.DictReader(f))
    pos = np.array([float(r["measured_position_nm"]) for r in rows])
    assert _rms(pos, m.front_nm) <= 2 * m.pixel_size_nm
    assert all(float(r["front_position_std_nm"]) > 0 for r in rows)
    assert abs(json.loads((out / "kinetics.json").read_text())["exponent"] - 0.5) <= 0.05


def test_width_kymograph_known_width():
    # a horizontal band 2 * 5.5 px wide (soft edges) along y = 20, widening to 2 * 7.5 px left of x = 30
    yy, xx = np.mgrid[0:41, 0:80].astype(float)
    half = np.where(xx < 30, 7.5, 5.5)
    mat = np.clip(half + 0.5 - np.abs(yy - 20), 0, 1)[None]
    ax = axis_from_points(0, 20, 79, 20, half_width_px=3.0)
    w = width_kymograph(mat, ax, reach=10)
    assert w.shape == (1, 80) and w.dtype == np.float32
    assert_allclose(w[0, 5:25], 15.0, atol=0.05)
    assert_allclose(w[0, 35:75], 11.0, atol=0.05)
    assert isinstance(ax, FrontAxis)
    with pytest.raises(ValueError, match="reach must be > 0"):
        width_kymograph(mat, ax, reach=0)


def test_bin_frames_and_upsample_linear_known_answer():
    from mltem.fronts import bin_frames, upsample_linear

    # a linear ramp: 2 x 2 block means sit at the block centres and linear interpolation
    # brings back the ramp exactly away from the (held-constant) outer half pixel
    yy, xx = np.mgrid[0:8, 0:12].astype(np.float32)
    ramp = (2 * yy + 3 * xx)[None].repeat(2, axis=0)
    small = bin_frames(ramp, 2)
    assert small.shape == (2, 4, 6) and small.dtype == np.float32
    assert_allclose(small[0], (2 * (2 * np.arange(4) + 0.5)[:, None] + 3 * (2 * np.arange(6) + 0.5)[None]))
    back = upsample_linear(small, 2, (8, 12))
    assert back.shape == (2, 8, 12)
    assert_allclose(back[:, 1:-1, 1:-1], ramp[:, 1:-1, 1:-1], atol=1e-4)
    # odd sizes: the edge pixel is repeated to a whole block, and the output has the full size
    assert bin_frames(np.ones((2, 7, 9)), 2).shape == (2, 4, 5)
    assert upsample_linear(np.ones((3, 4, 5)), 2, (7, 9)).shape == (3, 7, 9)
    assert np.array_equal(bin_frames(ramp, 1), ramp)
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        bin_frames(ramp, 0)
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        upsample_linear(small, 1.5, (8, 12))


def test_front_positions_guess_restricts_search():
    from mltem.fronts import front_positions

    # reacted columns 0..19 and 45..74: the best split overall is the far edge (between
    # columns 74 and 75: 74.5 px); a guess near the first edge (19.5 px) measures that one
    K = np.zeros((3, 100))
    K[:, :20] = 1.0
    K[:, 45:75] = 1.0
    assert_allclose(front_positions(K, levels=(1, 0)), 74.5, atol=1e-9)
    assert_allclose(front_positions(K, levels=(1, 0), guess=np.full(3, 22.0)), 19.5, atol=1e-9)
    with pytest.raises(ValueError, match="one position per frame"):
        front_positions(K, guess=np.zeros(2))
    with pytest.raises(ValueError, match="search_px must be >= 1"):
        front_positions(K, guess=np.zeros(3), search_px=0)


@pytest.mark.parametrize("contrast, n", [(-0.3, 0.5), (0.3, 0.8)])
def test_network_scale2_tracks_held_out_wire(contrast, n):
    # the network on 2 x 2 binned frames, the front refined from the full-resolution intensity
    _shipped_model()
    m = _held_out_wire(contrast, n)
    tr = track_fronts_network(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s, network_scale=2)
    assert tr.method == "network" and tr.axis.geometry == "wire" and tr.mode.endswith("+contrast")
    assert _rms(tr.measured_px, m.front_px) <= 2.0
    fit = fit_growth_law(tr.time_s, tr.measured_nm, bootstrap=0)
    assert abs(fit.n - n) <= 0.05
    with pytest.raises(ValueError, match="network_scale must be an integer >= 1"):
        track_fronts_network(m.frames, network_scale=0)


def test_network_particle_surface_from_intensity():
    # Core-shell particle with a darker shell, exact growth law (no fluctuations), held-out
    # seed and size. The surface (origin of the depths) is read from frame 0's intensity
    # (steepest point of the edge): within 0.3 px of the simulated radius, and the exponent
    # of the network's depths within 0.02 of the law's.
    _shipped_model()
    m = simulate_front_movie("core-shell", shape=(144, 144), n_frames=30, n=0.8, front_contrast=-0.3,
                             seed=10**6 + 4445, fluctuation=0.0)
    tr = track_fronts_network(m.frames, pixel_size_nm=m.pixel_size_nm, frame_time_s=m.frame_time_s)
    assert tr.axis.geometry == "core-shell"
    assert abs(tr.axis.radius_px - m.params["radius_px"]) <= 0.3
    assert _rms(tr.measured_px, m.front_px) <= 1.0
    fit = fit_growth_law(tr.time_s, tr.measured_nm, bootstrap=0)
    assert abs(fit.n - 0.8) <= 0.02
    with pytest.raises(ValueError, match="edge_from must be"):
        track_fronts_network(m.frames, edge_from="mask")


def test_reacted_level_needs_the_front_in_enough_frames():
    from mltem.fronts._track import reacted_level

    T, M = 40, 100
    K = np.zeros((T, M))
    pos = np.zeros(T)
    # the reacted class (level 0.9 behind the front) seen in frames 10..39: the level is read
    pos[10:] = 30.0
    K[10:, :30] = 0.9
    assert_allclose(reacted_level(K, pos), 0.9)
    # seen in 2 frames only (a patchy class): not evidence that the network sees the front
    pos2 = np.zeros(T)
    pos2[[12, 25]] = 30.0
    K2 = np.where(pos2[:, None] > 0, K, 0.0)
    assert np.isnan(reacted_level(K2, pos2))
    assert np.isnan(reacted_level(np.zeros((T, M)), np.zeros(T)))
