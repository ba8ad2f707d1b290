"""Reading TEM files into calibrated hyperspy signals.

Everything hyperspy/rosettasciio reads goes through ``hyperspy.api.load``; movies
(mp4/avi/mov/mkv/gif) go through imageio and ``.npy`` through ``numpy.load`` without
pickles. Afterwards the axes are put in mltem's units: nm for real space, 1/nm for
reciprocal space, eV for energy and s for time.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from mltem._errors import MltemError

__all__ = [
    "load",
    "normalise_units",
    "signal_kind",
    "require_kind",
    "check_finite",
    "MOVIE_EXTENSIONS",
    "LAZY_THRESHOLD_BYTES",
]

log = logging.getLogger(__name__)

MOVIE_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm")
# Files larger than this are opened lazily (dask) unless the caller says otherwise.
LAZY_THRESHOLD_BYTES = 2 * 1024**3

# Factors that turn a unit into mltem's canonical unit of the same dimension.
_UNIT_FACTORS: dict[str, tuple[str, float]] = {}
for _names, _canon, _factor in [
    (("nm",), "nm", 1.0),
    (("Å", "A", "angstrom", "Angstrom", "ang"), "nm", 0.1),
    (("pm",), "nm", 1e-3),
    (("µm", "um", "μm", "micron"), "nm", 1e3),
    (("mm",), "nm", 1e6),
    (("m",), "nm", 1e9),
    (("1/nm", "nm^-1", "nm-1", "1 / nm"), "1/nm", 1.0),
    (("1/Å", "1/A", "Å^-1", "A^-1", "1 / Å", "1/angstrom"), "1/nm", 10.0),
    (("1/pm", "pm^-1"), "1/nm", 1e3),
    (("1/µm", "1/um", "µm^-1", "um^-1", "1/μm"), "1/nm", 1e-3),
    (("1/m", "m^-1"), "1/nm", 1e-9),
    (("eV",), "eV", 1.0),
    (("keV",), "eV", 1e3),
    (("meV",), "eV", 1e-3),
    (("s", "sec"), "s", 1.0),
    (("ms",), "s", 1e-3),
    (("µs", "us", "μs"), "s", 1e-6),
    (("min",), "s", 60.0),
]:
    for _n in _names:
        _UNIT_FACTORS[_n] = (_canon, _factor)


# Set by the command line: hyperspy's and rosettasciio's own log lines (a missing numba,
# "please report this error") are noise next to mltem's one-line errors.
QUIET_LIBRARIES = False


def _hs():
    import hyperspy.api as hs

    if QUIET_LIBRARIES:
        hs.set_log_level("CRITICAL")
        logging.getLogger("rsciio").setLevel(logging.CRITICAL)
    return hs


def _check_path(path: Path) -> None:
    if not path.exists():
        raise MltemError("no such file", path=path)
    if path.is_dir():
        if path.suffix.lower() in (".zspy", ".zarr"):  # zarr stores are folders
            return
        raise MltemError("is a folder, not a file", path=path)
    if path.stat().st_size == 0:
        raise MltemError("file is empty (0 bytes)", path=path)
    if not os.access(path, os.R_OK):
        raise MltemError("file is not readable (permission denied)", path=path)


@functools.lru_cache(maxsize=1)
def _supported_extensions() -> frozenset[str]:
    from rsciio import IO_PLUGINS

    ext = {"." + e.lower() for p in IO_PLUGINS for e in p["file_extensions"]}
    return frozenset(ext | set(MOVIE_EXTENSIONS) | {".npy"})


def load(path, *, lazy: bool | None = None, index: int | None = None):
    """Read a file into a calibrated hyperspy signal.

    Parameters
    ----------
    path : str or os.PathLike
        Any format hyperspy/rosettasciio reads (dm3, dm4, emd, ser, mrc, tif, hspy,
        zspy, msa, ...), a movie (mp4, avi, mov, mkv, gif, webm) or a ``.npy`` array.
    lazy : bool, optional
        Open the data lazily (dask) and process it chunk by chunk. By default files
        larger than ``LAZY_THRESHOLD_BYTES`` (2 GiB) are opened lazily.
    index : int, optional
        Files holding several signals (e.g. EMD) return the largest one unless
        ``index`` picks another.

    Returns
    -------
    hyperspy.signal.BaseSignal
        The signal with axes in nm (real space), 1/nm (reciprocal space), eV (energy)
        and s (time). The file name is stored in ``metadata.General.original_filename``.

    Raises
    ------
    MltemError
        The file is missing, empty, of an unknown format, corrupt or truncated.
    """
    path = Path(path)
    _check_path(path)
    ext = path.suffix.lower()
    if ext not in _supported_extensions():
        raise MltemError(
            f"unknown file format '{ext or '(no extension)'}'; mltem reads dm3, dm4, emd, "
            "ser, mrc, tif, hspy, zspy, msa, npy and movies (mp4, avi, gif)",
            path=path,
        )
    if lazy is None:
        lazy = path.is_file() and path.stat().st_size > LAZY_THRESHOLD_BYTES
    if ext in MOVIE_EXTENSIONS:
        signal = _load_movie(path)
    elif ext == ".npy":
        signal = _load_npy(path, lazy=lazy)
    else:
        signal = _load_hyperspy(path, lazy=lazy, index=index)
    normalise_units(signal)
    signal.metadata.set_item("General.original_filename", path.name)
    return signal


def _load_hyperspy(path: Path, *, lazy: bool, index: int | None):
    import warnings

    hs = _hs()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = hs.load(str(path), lazy=lazy)
    except MltemError:
        raise
    except MemoryError as exc:
        raise MltemError("too large to load into memory; try lazy loading", path=path) from exc
    except Exception as exc:  # readers raise anything on corrupt input
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MltemError(
            f"cannot read the file: corrupt, truncated or not a valid {path.suffix[1:]} file "
            f"({reason[:160]})",
            path=path,
        ) from exc
    if isinstance(out, list):
        if not out:
            raise MltemError("the file holds no signal", path=path)
        if index is not None:
            if not 0 <= index < len(out):
                raise MltemError(f"holds {len(out)} signals; index {index} is out of range", path=path)
            out = out[index]
        else:
            out = max(out, key=lambda s: int(np.prod(s.data.shape)))
    if lazy is False:
        # Touch the data so that a truncated file fails here, not deep inside a routine.
        try:
            np.asarray(out.data.ravel()[:1])
        except Exception as exc:  # pragma: no cover - reader-specific
            raise MltemError(f"cannot read the data: truncated file ({exc})", path=path) from exc
    return out


def _load_npy(path: Path, *, lazy: bool):
    hs = _hs()
    try:
        data = np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None)
    except ValueError as exc:
        raise MltemError(f"cannot read the .npy array ({exc})", path=path) from exc
    except Exception as exc:
        raise MltemError(f"cannot read the .npy array: corrupt or truncated ({exc})", path=path) from exc
    if data.dtype.kind not in "biufc":
        raise MltemError(f"holds {data.dtype} data; expected numbers", path=path)
    if data.ndim == 0:
        raise MltemError("holds a single number, not an image or spectrum", path=path)
    data = np.asarray(data)
    cls = hs.signals.Signal1D if data.ndim == 1 else hs.signals.Signal2D
    return cls(data)


def _load_movie(path: Path):
    """Read a movie to a (frame, y, x) float32 stack; colour frames become luminance."""
    hs = _hs()
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, exclude_applied=False) or {}
    except Exception:  # noqa: BLE001 - metadata is optional
        meta = {}
    try:
        frames = [np.asarray(f) for f in iio.imiter(path)]
    except Exception as exc:
        raise MltemError(f"cannot read the movie: corrupt or truncated ({exc})", path=path) from exc
    if not frames:
        raise MltemError("the movie holds no frames", path=path)
    stack = np.stack(frames).astype(np.float32)
    if stack.ndim == 4:  # (frame, y, x, channel)
        if stack.shape[-1] >= 3:
            stack = stack[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        else:
            stack = stack[..., 0]
    s = hs.signals.Signal2D(stack)
    t = s.axes_manager.navigation_axes[0]
    t.name = "time"
    fps = meta.get("fps")
    duration_ms = meta.get("duration")
    if fps:
        t.scale, t.units = 1.0 / float(fps), "s"
    elif duration_ms and path.suffix.lower() == ".gif":
        t.scale, t.units = float(duration_ms) / 1000.0, "s"
    return s


def normalise_units(signal) -> None:
    """Convert every axis of ``signal`` in place to nm, 1/nm, eV or s.

    Axes with unknown or undefined units are left alone.
    """
    for ax in signal.axes_manager._axes:
        units = ax.units if isinstance(ax.units, str) else ""
        key = units.strip()
        if key in _UNIT_FACTORS:
            canon, factor = _UNIT_FACTORS[key]
            if factor != 1.0 and getattr(ax, "is_uniform", True):
                ax.scale = ax.scale * factor
                ax.offset = ax.offset * factor
            ax.units = canon


def signal_kind(signal) -> str:
    """Classify a signal as ``"image"``, ``"diffraction"``, ``"spectrum"`` or ``"unknown"``.

    The decision uses the signal dimension and the units of the signal axes.
    """
    sig_axes = signal.axes_manager.signal_axes
    units = {ax.units for ax in sig_axes if isinstance(ax.units, str)}
    if len(sig_axes) == 1:
        return "spectrum"
    if len(sig_axes) == 2:
        if units & {"1/nm"}:
            return "diffraction"
        stype = (signal.metadata.get_item("Signal.signal_type") or "").lower()
        if "diffraction" in stype or "electron_diffraction" in stype:
            return "diffraction"
        return "image"
    return "unknown"


_KIND_WORDS = {
    "image": "an image (2D signal, real-space units)",
    "diffraction": "a diffraction pattern (2D signal)",
    "spectrum": "a spectrum (1D signal, energy axis)",
    "unknown": "data of an unsupported dimension",
}


def require_kind(signal, kinds, *, path=None) -> str:
    """Raise a clear error unless ``signal_kind(signal)`` is one of ``kinds``.

    Parameters
    ----------
    signal : hyperspy signal
    kinds : str or sequence of str
        Accepted kinds, e.g. ``("image", "diffraction")``.
    path : str, optional
        The file, for the message.

    Returns
    -------
    str
        The kind found.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    kind = signal_kind(signal)
    if kind not in kinds:
        want = " or ".join(_KIND_WORDS[k].split(" (")[0] for k in kinds)
        path = path or signal.metadata.get_item("General.original_filename")
        raise MltemError(f"holds {_KIND_WORDS[kind]}; this command needs {want}", path=path)
    return kind


def check_finite(data, *, path=None) -> None:
    """Raise if ``data`` holds no finite value (all NaN/inf), e.g. a failed acquisition."""
    arr = data.data if hasattr(data, "axes_manager") else data
    try:
        import dask.array as da

        if isinstance(arr, da.Array):
            ok = bool(da.isfinite(arr).any().compute())
        else:
            ok = bool(np.isfinite(np.asarray(arr)).any())
    except ImportError:  # pragma: no cover
        ok = bool(np.isfinite(np.asarray(arr)).any())
    if not ok:
        raise MltemError("holds no finite values (all NaN or infinite)", path=path)
