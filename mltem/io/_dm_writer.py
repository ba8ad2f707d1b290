"""Minimal writer for Gatan DigitalMicrograph files (``.dm3`` / ``.dm4``).

RosettaSciIO (and so HyperSpy) can read DigitalMicrograph files but not write them; this
module writes small, calibrated DM3/DM4 files from numpy arrays, for examples and tests.
It depends on numpy and :mod:`struct` only.

File layout
-----------
A DM file is a header, one root tag group and eight zero bytes:

* header, big-endian: version (int32, 3 or 4); root length (uint32 for DM3 = file size
  - 16, uint64 for DM4 = file size - 24); byte order of the tag data (int32, 1 = little
  endian, as written by DigitalMicrograph on PCs);
* tag group: sorted flag (uint8, 1 for named groups, 0 for lists), open flag (uint8, 0),
  number of tags (uint32 / uint64);
* tag entry: kind (uint8, 20 = group, 21 = data), name length (uint16 BE), name; DM4
  only: size in bytes of the rest of the entry (uint64 BE); then the group, or for data
  ``%%%%``, the length of the type description (uint32 / uint64 BE), the type
  description (uint32 / uint64 BE each) and the value in little-endian order.

Lengths in DM3 are 4 bytes, in DM4 8 bytes; that is the whole difference between the two.

Dimensions
----------
DigitalMicrograph lists ``ImageData.Dimensions`` (and ``Calibrations.Dimension``)
fastest-varying first, i.e. reversed with respect to numpy C order: a numpy image of
shape ``(y, x)`` is stored with ``Dimensions = [x, y]``. Spectrum images are stored
*energy-slowest* (``Dimensions = [x, y, energy]``, numpy order ``(energy, y, x)``) and
flagged with ``ImageTags["Meta Data"]["Format"] = "Spectrum image"``; RosettaSciIO then
moves the energy axis to the signal axis on reading. A calibration stores ``Origin`` in
pixels, and readers compute ``offset = -Origin * Scale``.
"""
from __future__ import annotations

import os
import secrets
import struct
from typing import NamedTuple

import numpy as np

__all__ = ["write_dm"]

# Encoded types of tag data (the DM "EncodedType" codes).
_SHORT, _LONG, _USHORT, _ULONG, _FLOAT, _DOUBLE, _BOOL, _CHAR, _OCTET = 2, 3, 4, 5, 6, 7, 8, 9, 10
_STRUCT, _ARRAY = 15, 20
_STRUCT_FORMAT = {
    _SHORT: "h", _LONG: "i", _USHORT: "H", _ULONG: "I", _FLOAT: "f", _DOUBLE: "d",
    _BOOL: "B", _CHAR: "b", _OCTET: "B",
}
_TAG_GROUP, _TAG_DATA = 20, 21

# numpy dtype -> (ImageData.DataType, encoded type of the Data array elements; a tuple is
# an array of structs). DataType codes as read by rsciio.digitalmicrograph.
_IMAGE_TYPES = {
    np.dtype("int8"): (9, _CHAR),
    np.dtype("uint8"): (6, _OCTET),
    np.dtype("int16"): (1, _SHORT),
    np.dtype("uint16"): (10, _USHORT),
    np.dtype("int32"): (7, _LONG),
    np.dtype("uint32"): (11, _ULONG),
    np.dtype("float32"): (2, _FLOAT),
    np.dtype("float64"): (12, _DOUBLE),
    np.dtype("bool"): (14, _BOOL),
    np.dtype("complex64"): (3, (_FLOAT, _FLOAT)),
    np.dtype("complex128"): (13, (_DOUBLE, _DOUBLE)),
}

# hyperspy signal_type -> ImageTags["Meta Data"]["Signal"] that rsciio maps back to it.
_SIGNALS = {"": "", "EELS": "EELS", "EDS_TEM": "X-ray", "EDS": "X-ray", "CL": "CL"}

_DM3_MAX_BYTES = 2**31 - 1  # DM3 stores lengths as 32-bit integers


class _Scalar(NamedTuple):
    code: int
    value: object


class _Struct(NamedTuple):
    codes: tuple
    values: tuple


class _Array(NamedTuple):
    data: np.ndarray  # contiguous, little-endian
    code: object  # an encoded type, or a tuple of them for an array of structs


def _u32(value) -> _Scalar:
    return _Scalar(_ULONG, int(value))


def _i32(value) -> _Scalar:
    return _Scalar(_LONG, int(value))


def _f32(value) -> _Scalar:
    return _Scalar(_FLOAT, float(value))


def write_dm(
    path,
    data,
    *,
    scales=None,
    offsets=None,
    units=None,
    names=None,
    title: str = "",
    signal_type: str = "",
    version: int = 4,
) -> None:
    """Write a numpy array with calibrated axes to a DigitalMicrograph DM3 or DM4 file.

    All per-axis options are given in numpy (C) axis order, i.e. one entry per
    ``data.shape`` entry. The file is written to a temporary name in the same folder
    and renamed onto ``path``, so readers never see a partial file.

    Parameters
    ----------
    path : str or os.PathLike
        Output file, normally ending in ``.dm4`` (``version=4``) or ``.dm3``
        (``version=3``); the extension is not checked. An existing file is replaced.
    data : array_like
        1, 2 or 3 dimensions in numpy order: ``(energy,)`` for a spectrum, ``(y, x)``
        for an image, ``(frame, y, x)`` for an image stack. With a spectroscopic
        ``signal_type`` the last axis is the spectral axis: ``(position, energy)`` is a
        line scan and ``(y, x, energy)`` a spectrum image. dtype int8, uint8, int16,
        uint16, int32, uint32, float32, float64, bool, complex64 or complex128 (the
        image types DigitalMicrograph knows). Every axis must have at least one point.
    scales : sequence of float, optional
        Calibrated size of one pixel per axis; non-zero, finite and within the float32
        range. Default 1.
    offsets : sequence of float, optional
        Calibrated coordinate of the first pixel per axis; finite. Default 0. Stored
        as the DM origin ``-offset / scale`` (in pixels).
    units : sequence of str, optional
        Units per axis, e.g. ``"nm"``, ``"1/nm"``, ``"eV"``, ``"µm"``. Default ``""``.
    names : sequence of str or None, optional
        Axis names, stored as ``Label`` in each ``Calibrations.Dimension`` group
        (``None`` skips one). HyperSpy does not read them back: it names axes ``x``,
        ``y``, ``z`` (fastest first), except the ``eV`` axis of EELS data (``Energy
        loss``) and the ``nm`` axis of CL data (``Wavelength``).
    title : str, optional
        Image name (HyperSpy's ``metadata.General.title``).
    signal_type : {"", "EELS", "EDS_TEM", "EDS", "CL"}, optional
        Spectroscopic data type, written as ``ImageTags["Meta Data"]["Signal"]``
        (``"EELS"``, ``"X-ray"``, ``"CL"``) so HyperSpy loads the matching signal class.
        With a non-empty value, 2D and 3D data are written as a spectrum line / image
        (last numpy axis spectral); with ``""`` they are an image / image stack.
    version : {4, 3}, optional
        4 writes DM4 (8-byte lengths), 3 writes DM3 (4-byte lengths, files < 2 GiB).

    Raises
    ------
    ValueError
        If ``data`` has an unsupported dtype or number of dimensions or an empty axis,
        if ``scales``, ``offsets``, ``units`` or ``names`` do not have one valid entry
        per axis, if ``title``/``signal_type``/``version`` is invalid, or if the data
        are too large for DM3.
    OSError
        If the file cannot be written (e.g. its folder does not exist).

    Notes
    -----
    What ``hyperspy.api.load`` returns (HyperSpy 2.5, RosettaSciIO 0.15):

    * 1D ``(E,)``: ``Signal1D`` (``EELSSpectrum`` etc. with ``signal_type``), same
      array, one signal axis.
    * 2D ``(y, x)``, ``signal_type=""``: ``Signal2D``, same array, axes ``y``, ``x``.
    * 2D ``(n, E)`` with ``signal_type``: stored as a DM line-scan spectrum image of
      height 1 (``Dimensions = [n, 1, E]``); loads as a ``Signal1D`` subclass with one
      navigation axis, same array.
    * 3D ``(frame, y, x)``, ``signal_type=""``: ``Signal2D`` with one navigation axis
      (named ``z``), same array.
    * 3D ``(y, x, E)`` with ``signal_type``: stored energy-slowest (``Dimensions =
      [x, y, E]``); loads as a ``Signal1D`` subclass, navigation ``(x, y)``, same array.

    In every case ``axis.index_in_array`` matches the numpy axis, and scale, offset and
    units round-trip to float32 precision (DM stores calibrations as float32). HyperSpy
    squeezes axes of length 1 away on loading. ``signal_type="EDS"`` loads as
    ``"EDS_TEM"``; ``"CL"`` needs LumiSpy for a CL class (else a ``Signal1D``).

    Examples
    --------
    >>> import numpy as np
    >>> from mltem.io._dm_writer import write_dm
    >>> img = np.zeros((64, 64), dtype=np.float32)
    >>> write_dm("image.dm4", img, scales=[0.1, 0.1], units=["nm", "nm"])  # doctest: +SKIP
    """
    if isinstance(version, bool) or version not in (3, 4):
        raise ValueError(f"version must be 3 (DM3) or 4 (DM4), got {version!r}")
    arr = np.asarray(data)
    if arr.ndim not in (1, 2, 3):
        raise ValueError(f"data must have 1, 2 or 3 dimensions, got {arr.ndim} (shape {arr.shape})")
    if 0 in arr.shape:
        raise ValueError(f"data must not have an empty axis, got shape {arr.shape}")
    native = arr.dtype.newbyteorder("=")
    if native not in _IMAGE_TYPES:
        supported = ", ".join(str(d) for d in _IMAGE_TYPES)
        raise ValueError(f"unsupported dtype {arr.dtype}; DigitalMicrograph images can be {supported}")
    if not isinstance(title, str):
        raise ValueError(f"title must be a str, got {type(title).__name__}")
    if not isinstance(signal_type, str) or signal_type not in _SIGNALS:
        allowed = ", ".join(repr(s) for s in _SIGNALS)
        raise ValueError(f"signal_type must be one of {allowed}, got {signal_type!r}")

    ndim = arr.ndim
    scales = _floats(scales, "scales", ndim, 1.0)
    offsets = _floats(offsets, "offsets", ndim, 0.0)
    if not np.all(np.isfinite(scales)) or np.any(scales == 0):
        raise ValueError(f"scales must be finite and non-zero, got {scales.tolist()}")
    if not np.all(np.isfinite(offsets)):
        raise ValueError(f"offsets must be finite, got {offsets.tolist()}")
    # DM stores calibrations as float32: scale and origin (-offset / scale) must fit.
    f32 = np.finfo(np.float32)
    if np.any(np.abs(scales) < f32.tiny) or np.any(np.abs(scales) > f32.max):
        raise ValueError(f"scales must be representable as float32, got {scales.tolist()}")
    if np.any(np.abs(offsets / scales) > f32.max / 2):
        raise ValueError("offsets / scales must be representable as float32 (the DM origin in pixels)")
    units = _strings(units, "units", ndim, "")
    names = _strings(names, "names", ndim, None)

    # One calibration per numpy axis: (scale, offset, units, name).
    cals = list(zip(scales.tolist(), offsets.tolist(), units, names))
    spectral = signal_type != ""
    if spectral and ndim == 3:  # (y, x, E) -> (E, y, x): DM spectrum images are energy-slowest
        arr = np.moveaxis(arr, 2, 0)
        cals = [cals[2], cals[0], cals[1]]
    elif spectral and ndim == 2:  # (n, E) -> (E, 1, n): a line scan is a spectrum image of height 1
        arr = arr.T[:, np.newaxis, :]
        cals = [cals[1], (1.0, 0.0, "", None), cals[0]]

    tree = _document(arr, cals[::-1], title=title, signal=_SIGNALS[signal_type], spectral=spectral)
    _write_atomic(os.fspath(path), _encode_file(tree, version))


def _floats(values, what: str, ndim: int, default: float) -> np.ndarray:
    if values is None:
        return np.full(ndim, default)
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{what} must be a sequence with one number per axis ({ndim}), got {values!r}")
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must contain numbers, got {values!r}") from exc
    if out.shape != (ndim,):
        raise ValueError(f"{what} must have one entry per axis: data has {ndim} dimensions, got {out.size}")
    return out


def _strings(values, what: str, ndim: int, default):
    if values is None:
        return [default] * ndim
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{what} must be a sequence with one str per axis ({ndim}), got {values!r}")
    values = list(values)
    if len(values) != ndim:
        raise ValueError(f"{what} must have one entry per axis: data has {ndim} dimensions, got {len(values)}")
    for v in values:
        if not (isinstance(v, str) or (default is None and v is None)):
            raise ValueError(f"{what} must contain str, got {v!r}")
    return values


def _calibration(scale: float, offset: float, units: str, name) -> dict:
    # DM stores float32; derive the origin from the float32 scale so that a reader's
    # -origin * scale lands on the requested offset to float32 precision.
    scale32 = float(np.float32(scale))
    group = {"Origin": _f32(-offset / scale32 + 0.0), "Scale": _f32(scale32), "Units": units}  # + 0.0: no -0.0
    if name:
        group["Label"] = name
    return group


def _document(arr: np.ndarray, dm_cals, *, title: str, signal: str, spectral: bool) -> dict:
    """The tag tree of a one-image DM document; ``dm_cals`` is fastest-first."""
    native = arr.dtype.newbyteorder("=")
    data_type, element = _IMAGE_TYPES[native]
    payload = np.ascontiguousarray(arr, dtype=native.newbyteorder("<"))
    image_data = {
        "Calibrations": {
            "Brightness": {"Origin": _f32(0.0), "Scale": _f32(1.0), "Units": ""},
            "Dimension": [_calibration(*c) for c in dm_cals],
            "DisplayCalibratedUnits": True,
        },
        "Data": _Array(payload.reshape(-1), element),
        "DataType": _u32(data_type),
        "Dimensions": [_u32(n) for n in arr.shape[::-1]],
        "PixelDepth": _u32(native.itemsize),
    }
    meta = {}
    if arr.ndim == 1 or spectral:
        meta["Format"] = "Spectrum" if arr.ndim == 1 else "Spectrum image"
    if signal:
        meta["Signal"] = signal
    image_tags = {"Meta Data": meta} if meta else {}

    display = {"AnnotationType": _i32(20), "ImageSource": _u32(0), "UniqueID": _u32(8)}
    if arr.ndim == 3:
        # Show one plane: energy (summed dimension 2) is the slowest DM axis of a
        # spectrum image, the frame axis that of a stack.
        source = {
            "ClassName": "ImageSource:Summed", "Do Sum": True, "Id": [_u32(0)], "ImageRef": _u32(0),
            "LayerEnd": _u32(0), "LayerStart": _u32(0), "Summed Dimension": _u32(2),
        }
        if spectral:
            display["ImageDisplayType"] = _i32(1)  # raster image of the spectrum image
            display["AnnotationGroupList"] = [{
                "AnnotationType": _i32(23), "Name": "SICursor", "UniqueID": _u32(9),
                "Rectangle": _Struct((_FLOAT,) * 4, (0.0, 0.0, 1.0, 1.0)),
            }]
    else:
        source = {"ClassName": "ImageSource:Simple", "Id": [_u32(0)], "ImageRef": _u32(0)}
    return {
        "DocumentObjectList": [display],
        "Image Behavior": {"ViewDisplayID": _u32(8)},
        "ImageList": [{"ImageData": image_data, "ImageTags": image_tags, "Name": title}],
        "ImageSourceList": [source],
        "InImageMode": True,
    }


class _Encoder:
    """Serialise a tag tree into a list of chunks (bytes or numpy arrays)."""

    def __init__(self, version: int):
        self.version = version
        self._len = struct.Struct(">Q" if version == 4 else ">I")

    def length(self, n: int) -> bytes:
        return self._len.pack(n)

    def group(self, value) -> list:
        if isinstance(value, dict):
            items = sorted(value.items(), key=lambda kv: kv[0].lower())  # DM sorts tags case-insensitively
            head = struct.pack(">BB", 1, 0)
        else:
            items = [("", v) for v in value]
            head = struct.pack(">BB", 0, 0)
        chunks = [head + self.length(len(items))]
        for name, item in items:
            chunks += self.entry(name, item)
        return chunks

    def entry(self, name: str, value) -> list:
        if isinstance(value, (dict, list)):
            kind, body = _TAG_GROUP, self.group(value)
        else:
            kind, body = _TAG_DATA, self.data(value)
        label = name.encode("latin-1")
        head = struct.pack(">BH", kind, len(label)) + label
        if self.version == 4:
            head += struct.pack(">Q", _nbytes(body))
        return [head] + body

    def data(self, value) -> list:
        if isinstance(value, bool):
            info, payload = [_BOOL], [struct.pack("<B", value)]
        elif isinstance(value, _Scalar):
            info, payload = [value.code], [struct.pack("<" + _STRUCT_FORMAT[value.code], value.value)]
        elif isinstance(value, str):  # strings are arrays of UTF-16 code units
            text = value.encode("utf-16-le")
            info, payload = [_ARRAY, _USHORT, len(text) // 2], [text]
        elif isinstance(value, _Struct):
            info = [_STRUCT, 0, len(value.codes)] + [x for c in value.codes for x in (0, c)]
            fmt = "<" + "".join(_STRUCT_FORMAT[c] for c in value.codes)
            payload = [struct.pack(fmt, *value.values)]
        elif isinstance(value, _Array):
            if isinstance(value.code, tuple):  # array of structs
                fields = [x for c in value.code for x in (0, c)]
                info = [_ARRAY, _STRUCT, 0, len(value.code)] + fields + [value.data.size]
            else:
                info = [_ARRAY, value.code, value.data.size]
            payload = [value.data]
        else:  # pragma: no cover - internal trees only hold the types above
            raise TypeError(f"cannot encode {value!r} as a DM tag")
        head = b"%%%%" + self.length(len(info)) + b"".join(self.length(i) for i in info)
        return [head] + payload


def _nbytes(chunks) -> int:
    return sum(c.nbytes if isinstance(c, np.ndarray) else len(c) for c in chunks)


def _encode_file(tree: dict, version: int) -> list:
    root = _Encoder(version).group(tree)
    root_len = _nbytes(root)
    if version == 4:
        header = struct.pack(">iQi", 4, root_len, 1)  # root length = file size - 24
    else:
        if root_len + 20 > _DM3_MAX_BYTES:
            raise ValueError(f"data too large for DM3 ({root_len + 20} bytes, limit 2 GiB); use version=4")
        header = struct.pack(">iIi", 3, root_len + 4, 1)  # root length + 4 = file size - 16
    return [header] + root + [bytes(8)]


def _write_atomic(path: str, chunks) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.partial")
    # os.open with mode 0o666 honours the umask, unlike tempfile.mkstemp (0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk.view(np.uint8) if isinstance(chunk, np.ndarray) else chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
