"""Reading files into calibrated signals, units normalisation, info."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mltem import MltemError, io


@pytest.mark.parametrize("ext", ["hspy", "tif", "emd", "zspy"])
def test_image_round_trip_keeps_data_and_calibration(image_files, lattice, ext):
    s = io.load(image_files[ext])
    assert io.signal_kind(s) == "image"
    assert_allclose(np.asarray(s.data), lattice)
    for ax in s.axes_manager.signal_axes:
        assert ax.units == "nm"
        assert_allclose(ax.scale, 0.05, rtol=1e-5)
    assert s.metadata.General.original_filename == image_files[ext].name


def test_npy_loads_without_pickles(image_files, lattice, tmp_path):
    s = io.load(image_files["npy"])
    assert_allclose(s.data, lattice)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MltemError, match="obj.npy: cannot read the .npy array"):
        io.load(tmp_path / "obj.npy")


def test_npy_lazy_is_memory_mapped(image_files, lattice):
    s = io.load(image_files["npy"], lazy=True)
    assert_allclose(np.asarray(s.data), lattice)


def test_spectrum_msa(spectrum_file):
    s = io.load(spectrum_file)
    assert io.signal_kind(s) == "spectrum"
    ax = s.axes_manager.signal_axes[0]
    assert ax.units == "eV"
    assert_allclose([ax.offset, ax.scale], [620.0, 0.25])


def test_lazy_hspy_streams(image_files, lattice):
    s = io.load(image_files["hspy"], lazy=True)
    assert s._lazy
    assert_allclose(np.asarray(s.data.compute()), lattice)


@pytest.mark.parametrize(
    "units, scale, offset, want_units, want_scale, want_offset",
    [
        ("Å", 0.5, 10.0, "nm", 0.05, 1.0),
        ("µm", 0.002, 0.0, "nm", 2.0, 0.0),
        ("1/Å", 0.01, 0.0, "1/nm", 0.1, 0.0),
        ("keV", 0.001, 0.5, "eV", 1.0, 500.0),
        ("ms", 40.0, 0.0, "s", 0.04, 0.0),
        ("nm", 0.3, 1.0, "nm", 0.3, 1.0),
        ("furlong", 2.0, 0.0, "furlong", 2.0, 0.0),
    ],
)
def test_normalise_units(units, scale, offset, want_units, want_scale, want_offset):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.zeros(5))
    ax = s.axes_manager.signal_axes[0]
    ax.units, ax.scale, ax.offset = units, scale, offset
    io.normalise_units(s)
    assert ax.units == want_units
    assert_allclose([ax.scale, ax.offset], [want_scale, want_offset])


def test_real_dm3_spectrum_image():
    """The real NMC spectrum image: 2 x 21 spectra, 2048 channels at 0.3 eV from 440 eV."""
    from pathlib import Path

    p = Path(__file__).parents[1] / "datasets" / "examples" / "nmc_core_loss_SI.dm3"
    if not p.exists():
        pytest.skip("examples not made")
    s = io.load(p)
    d = io.describe(s)
    assert d["kind"] == "spectrum"
    assert d["shape"] == [2, 21, 2048]
    e = s.axes_manager.signal_axes[0]
    assert_allclose([e.offset, e.scale], [440.0, 0.3], rtol=1e-4)
    assert s.axes_manager.navigation_axes[0].units == "nm"  # converted from µm


def test_movie_gif_and_mp4(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    frames = (rng.random((5, 32, 48)) * 200).astype(np.uint8)
    frames[:, :, :10] = 0
    iio.imwrite(tmp_path / "m.gif", frames, duration=200, loop=0)
    s = io.load(tmp_path / "m.gif")
    assert s.data.shape == (5, 32, 48)
    assert_allclose(s.data, frames, atol=0.5)
    t = s.axes_manager.navigation_axes[0]
    assert t.units == "s" and t.scale == pytest.approx(0.2)

    rgb = np.repeat(frames[..., None], 3, axis=-1)
    rgb = np.pad(rgb, ((0, 0), (0, 0), (0, 0), (0, 0)))
    iio.imwrite(tmp_path / "m.mp4", rgb, fps=10, codec="libx264", macro_block_size=16)
    m = io.load(tmp_path / "m.mp4")
    assert m.data.shape == (5, 32, 48)
    assert m.axes_manager.navigation_axes[0].scale == pytest.approx(0.1)
    assert float(np.asarray(m.data)[:, :, :8].mean()) < 20  # dark band survives compression


def test_info_describes_axes(image_files):
    d = io.describe(io.load(image_files["hspy"]))
    assert d["shape"] == [64, 48]
    assert [a["size"] for a in d["axes"]] == [48, 64]
    text = io.format_description(d)
    assert "0.05" in text and "nm" in text and "image" in text


def test_require_kind_and_check_finite(spectrum_file, tmp_path):
    s = io.load(spectrum_file)
    with pytest.raises(MltemError, match="spec.msa: holds a spectrum.*needs an image"):
        io.require_kind(s, "image")
    assert io.require_kind(s, ("spectrum",)) == "spectrum"
    with pytest.raises(MltemError, match="x.npy: holds no finite values"):
        io.check_finite(np.full((3, 3), np.nan), path="x.npy")
    io.check_finite(np.array([np.nan, 1.0]))


def test_emd_with_several_signals_picks_largest_or_index(tmp_path):
    import hyperspy.api as hs

    p = tmp_path / "two.npy"
    np.save(p, np.ones((4, 4)))
    with pytest.raises(MltemError, match="index 3 is out of range"):
        # one signal only: index makes sense only for lists; use hspy list via monkeypatched load
        from mltem.io import _load

        orig = hs.load
        try:
            hs.load = lambda *a, **k: [hs.signals.Signal1D(np.ones(3)), hs.signals.Signal2D(np.ones((5, 5)))]
            q = tmp_path / "x.emd"
            q.write_bytes(b"x")
            assert _load.load(q).data.shape == (5, 5)
            assert _load.load(q, index=0).data.shape == (3,)
            _load.load(q, index=3)
        finally:
            hs.load = orig


@pytest.mark.parametrize("lazy", [False, True])
def test_iter_chunks_streams_frames_in_order(tmp_path, lazy):
    import hyperspy.api as hs

    stack = np.arange(7 * 4 * 5, dtype=np.float32).reshape(7, 4, 5)
    hs.signals.Signal2D(stack).save(tmp_path / "s.hspy")
    s = io.load(tmp_path / "s.hspy", lazy=lazy)
    assert io.n_frames(s) == 7
    got = list(io.iter_chunks(s, chunk=3))
    assert [g[0] for g in got] == [0, 3, 6]
    assert_allclose(np.concatenate([g[1] for g in got]), stack)
    single = hs.signals.Signal2D(stack[0])
    assert io.n_frames(single) == 1 and next(io.iter_chunks(single))[1].shape == (1, 4, 5)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        next(io.iter_chunks(s, chunk=0))
