"""Round-trip tests of the DM3/DM4 writer through hyperspy / rosettasciio."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from mltem.io._dm_writer import write_dm

hs = pytest.importorskip("hyperspy.api")

VERSIONS = pytest.mark.parametrize("version", [3, 4])


def _path(tmp_path, version, name="test"):
    return tmp_path / f"{name}.dm{version}"


def _axes_in_array_order(signal):
    """The signal's axes sorted by the numpy axis they describe."""
    axes = list(signal.axes_manager.navigation_axes) + list(signal.axes_manager.signal_axes)
    return sorted(axes, key=lambda ax: ax.index_in_array)


def _assert_axes(signal, scales, offsets, units):
    axes = _axes_in_array_order(signal)
    assert [ax.index_in_array for ax in axes] == list(range(signal.data.ndim))
    # DM stores calibrations as float32.
    np.testing.assert_allclose([ax.scale for ax in axes], scales, rtol=1e-6)
    np.testing.assert_allclose([ax.offset for ax in axes], offsets, rtol=1e-6, atol=1e-9)
    assert [ax.units for ax in axes] == list(units)


@VERSIONS
def test_image_2d_float32_round_trip(tmp_path, version):
    data = np.arange(5 * 7, dtype=np.float32).reshape(5, 7) * 0.5 - 3
    path = _path(tmp_path, version)
    scales, offsets, units = [0.125, 0.25], [1.5, -20.0], ["nm", "µm"]
    write_dm(path, data, scales=scales, offsets=offsets, units=units, title="HAADF", version=version)

    s = hs.load(path)
    assert isinstance(s, hs.signals.Signal2D)
    assert s.data.dtype == np.float32
    assert s.data.shape == (5, 7)
    np.testing.assert_array_equal(s.data, data)
    assert s.axes_manager.navigation_dimension == 0
    _assert_axes(s, scales, offsets, units)
    assert [ax.name for ax in _axes_in_array_order(s)] == ["y", "x"]
    assert s.metadata.General.title == "HAADF"


@VERSIONS
def test_spectrum_1d_float32_eels_round_trip(tmp_path, version):
    data = np.linspace(1000.0, 10.0, 32, dtype=np.float32)
    path = _path(tmp_path, version)
    scales, offsets, units = [0.25], [283.7], ["eV"]
    write_dm(path, data, scales=scales, offsets=offsets, units=units, signal_type="EELS", version=version)

    s = hs.load(path)
    assert isinstance(s, hs.signals.Signal1D)
    assert s.metadata.Signal.signal_type == "EELS"
    assert s.data.dtype == np.float32
    assert s.data.shape == (32,)
    np.testing.assert_array_equal(s.data, data)
    _assert_axes(s, scales, offsets, units)
    assert s.axes_manager.signal_axes[0].name == "Energy loss"


@VERSIONS
def test_stack_3d_uint16_round_trip(tmp_path, version):
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5) * 1000
    path = _path(tmp_path, version)
    scales, offsets, units = [0.5, 0.2, 0.1], [10.0, 1.0, -2.0], ["s", "nm", "nm"]
    write_dm(path, data, scales=scales, offsets=offsets, units=units, version=version)

    s = hs.load(path)
    assert isinstance(s, hs.signals.Signal2D)
    assert s.data.dtype == np.uint16
    assert s.data.shape == (3, 4, 5)
    np.testing.assert_array_equal(s.data, data)
    assert s.axes_manager.navigation_shape == (3,)
    assert s.axes_manager.signal_shape == (5, 4)
    _assert_axes(s, scales, offsets, units)


@VERSIONS
def test_spectrum_image_3d_eels_round_trip(tmp_path, version):
    data = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    path = _path(tmp_path, version)
    scales, offsets, units = [2.0, 3.0, 0.5], [0.0, 6.0, 400.0], ["nm", "nm", "eV"]
    write_dm(path, data, scales=scales, offsets=offsets, units=units, signal_type="EELS", version=version)

    s = hs.load(path)
    assert isinstance(s, hs.signals.Signal1D)
    assert s.metadata.Signal.signal_type == "EELS"
    assert s.data.shape == (2, 3, 8)
    np.testing.assert_array_equal(s.data, data)
    assert s.axes_manager.navigation_shape == (3, 2)
    assert s.axes_manager.signal_shape == (8,)
    _assert_axes(s, scales, offsets, units)


@pytest.mark.parametrize(
    "dtype", ["int8", "uint8", "int16", "int32", "uint32", "float64", "bool", "complex64", "complex128", ">f4"]
)
def test_other_dtypes_round_trip(tmp_path, dtype):
    data = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    if data.dtype.kind == "c":
        data = data + 1j * data[::-1]
    path = _path(tmp_path, 4)
    write_dm(path, data)
    s = hs.load(path)
    assert s.data.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(s.data, data)


def test_names_are_stored_as_dimension_labels(tmp_path):
    path = _path(tmp_path, 4)
    write_dm(path, np.zeros((2, 3, 4), np.float32), names=["time", "y", None])
    dims = hs.load(path).original_metadata.ImageList.TagGroup0.ImageData.Calibrations.Dimension
    # DM lists dimensions fastest first: x, y, time.
    assert "Label" not in dims.TagGroup0
    assert dims.TagGroup1.Label == "y"
    assert dims.TagGroup2.Label == "time"


@VERSIONS
def test_file_framing(tmp_path, version):
    path = _path(tmp_path, version)
    write_dm(path, np.zeros((2, 3), np.float32), version=version)
    raw = path.read_bytes()
    assert struct.unpack(">i", raw[:4])[0] == version
    if version == 4:
        root_len, order = struct.unpack(">Qi", raw[4:16])
        assert root_len == len(raw) - 24
    else:
        root_len, order = struct.unpack(">Ii", raw[4:12])
        assert root_len == len(raw) - 16
    assert order == 1  # little-endian tag data
    assert raw[-8:] == bytes(8)


def test_overwrites_atomically_and_leaves_no_temporary_files(tmp_path):
    path = _path(tmp_path, 4)
    path.write_bytes(b"old")
    write_dm(path, np.ones(4, np.float32))
    assert os.listdir(tmp_path) == [path.name]
    np.testing.assert_array_equal(hs.load(path).data, np.ones(4, np.float32))


@pytest.mark.parametrize(
    "data, kwargs, match",
    [
        (np.zeros((2, 2), np.int64), {}, "unsupported dtype"),
        (np.zeros((2, 2), np.float16), {}, "unsupported dtype"),
        (np.array(["a", "b"]), {}, "unsupported dtype"),
        (np.float32(1.0), {}, "1, 2 or 3 dimensions"),
        (np.zeros((2, 2, 2, 2), np.float32), {}, "1, 2 or 3 dimensions"),
        (np.zeros((0, 3), np.float32), {}, "empty axis"),
        (np.zeros(3, np.float32), {"version": 2}, "version"),
        (np.zeros(3, np.float32), {"version": 5}, "version"),
        (np.zeros((2, 2), np.float32), {"scales": [1.0]}, "scales must have one entry per axis"),
        (np.zeros((2, 2), np.float32), {"scales": 1.0}, "scales must be a sequence"),
        (np.zeros((2, 2), np.float32), {"scales": [1.0, 0.0]}, "non-zero"),
        (np.zeros((2, 2), np.float32), {"scales": [1.0, np.nan]}, "finite"),
        (np.zeros((2, 2), np.float32), {"offsets": [0.0, 1.0, 2.0]}, "offsets must have one entry per axis"),
        (np.zeros((2, 2), np.float32), {"scales": [1.0, 1e-60]}, "float32"),
        (np.zeros((2, 2), np.float32), {"offsets": [0.0, np.inf]}, "finite"),
        (np.zeros((2, 2), np.float32), {"scales": [1.0, 1e-30], "offsets": [0.0, 1e20]}, "float32"),
        (np.zeros((2, 2), np.float32), {"units": ["nm"]}, "units must have one entry per axis"),
        (np.zeros((2, 2), np.float32), {"units": "nm"}, "units must be a sequence"),
        (np.zeros((2, 2), np.float32), {"units": ["nm", 1]}, "units must contain str"),
        (np.zeros((2, 2), np.float32), {"names": ["y"]}, "names must have one entry per axis"),
        (np.zeros(3, np.float32), {"signal_type": "electron_diffraction"}, "signal_type"),
        (np.zeros(3, np.float32), {"title": 3}, "title"),
    ],
)
def test_invalid_input_raises_value_error(tmp_path, data, kwargs, match):
    path = tmp_path / "invalid.dm4"
    with pytest.raises(ValueError, match=match):
        write_dm(path, data, **kwargs)
    assert os.listdir(tmp_path) == []
