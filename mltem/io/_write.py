"""Writing results: the ``--out DIR`` convention.

Every command writes into one folder: ``summary.json`` (parameters, versions, model
sha256s, timings, figures), arrays as calibrated ``.hspy``, tables as ``.csv`` with a
header row and figures as ``.png``. Each file is written to a temporary name in the same
folder and renamed into place, so a reader never sees half a file and an interrupted run
leaves no corrupt output. A non-empty folder is refused unless ``force=True``, and no
output may replace an input file.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io as _io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mltem._errors import MltemError

__all__ = ["OutputDir", "atomic_write", "array_to_signal", "versions"]

log = logging.getLogger(__name__)


@contextmanager
def atomic_write(path, *, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        Final file name.
    suffix : str, optional
        Extension the temporary file must carry (writers that pick a format from the
        extension need it); defaults to the final file's extension.
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes owner-only files; give the usual permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def versions() -> dict:
    """Versions of mltem, Python and the libraries that shape results."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("mltem", "numpy", "scipy", "scikit-image", "hyperspy", "rosettasciio", "onnxruntime", "torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def array_to_signal(array, *, axes=None, title: str = "", signal_dims: int = 2, quantity: str = ""):
    """Wrap a numpy array in a hyperspy signal with calibrated axes.

    Parameters
    ----------
    array : numpy.ndarray
        Data in numpy order, e.g. (frame, y, x) or (y, x, energy).
    axes : list of dict, optional
        One dict per array dimension in numpy order, with any of ``name``, ``scale``,
        ``offset``, ``units``.
    title : str
    signal_dims : int
        How many trailing dimensions are signal (2 for images, 1 for spectra).
    quantity : str
        Intensity quantity and unit, e.g. ``"Phase (rad)"``.

    Returns
    -------
    hyperspy.signal.BaseSignal
    """
    import hyperspy.api as hs

    array = np.asarray(array)
    if signal_dims not in (1, 2) or array.ndim < signal_dims:
        raise ValueError(f"signal_dims={signal_dims} does not fit an array of ndim {array.ndim}")
    if axes is not None and len(axes) != array.ndim:
        raise ValueError(f"got {len(axes)} axes descriptions for an array of ndim {array.ndim}")
    cls = hs.signals.Signal2D if signal_dims == 2 else hs.signals.Signal1D
    s = cls(array)
    if axes is not None:
        # hyperspy orders axes navigation first (reversed), then signal (reversed).
        nd = array.ndim
        for i, spec in enumerate(axes):
            if i < nd - signal_dims:
                ax = s.axes_manager.navigation_axes[nd - signal_dims - 1 - i]
            else:
                ax = s.axes_manager.signal_axes[nd - 1 - i]
            for key in ("name", "scale", "offset", "units"):
                if key in spec and spec[key] is not None:
                    setattr(ax, key, spec[key])
    if title:
        s.metadata.General.title = title
    if quantity:
        s.metadata.set_item("Signal.quantity", quantity)
    return s


class OutputDir:
    """The folder a command writes into.

    Parameters
    ----------
    path : str or os.PathLike
        Folder to create. An existing non-empty folder is refused unless ``force``.
    force : bool
        Allow writing into a non-empty folder (existing files of the same name are
        replaced; other files are left alone).
    inputs : sequence of path
        The command's input files; no output may replace one of them.
    command : str
        Name of the command, recorded in ``summary.json``.
    """

    def __init__(self, path, *, force: bool = False, inputs=(), command: str = ""):
        self.path = Path(path)
        self.command = command
        self.inputs = [Path(p) for p in inputs]
        self._input_real = {os.path.realpath(p) for p in self.inputs}
        if self.path.exists() and not self.path.is_dir():
            raise MltemError("--out must be a folder, but a file of that name exists", path=self.path)
        if self.path.is_dir() and any(self.path.iterdir()) and not force:
            raise MltemError(
                "output folder is not empty; choose another --out or pass --force to write into it",
                path=self.path,
            )
        if os.path.realpath(self.path) in self._input_real:
            raise MltemError("--out is one of the inputs", path=self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._started = _dt.datetime.now(_dt.timezone.utc)

    # -- paths -----------------------------------------------------------------
    def file(self, name: str) -> Path:
        """Path of an output file; refuses names that would replace an input."""
        p = self.path / name
        if os.path.realpath(p) in self._input_real:
            raise MltemError("refusing to overwrite an input file; choose another --out", path=p)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def record(self, p: Path) -> Path:
        """List a file written into the folder by other means in ``summary.json``'s outputs."""
        rel = str(p.relative_to(self.path))
        if rel not in self.files:
            self.files.append(rel)
        return p

    @contextmanager
    def timer(self, label: str):
        """Time a block; the seconds go into ``summary.json`` under ``timings_s``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t

    # -- writers ---------------------------------------------------------------
    def save_signal(self, name: str, signal) -> Path:
        """Save a hyperspy signal as ``.hspy`` (calibrated axes preserved)."""
        if not name.endswith(".hspy"):
            raise ValueError(f"array outputs are .hspy files, got {name!r}")
        p = self.file(name)
        if getattr(signal, "_lazy", False):
            signal = signal.as_lazy()  # hyperspy writes lazy signals chunk by chunk
        with atomic_write(p) as tmp:
            tmp.unlink()  # hyperspy refuses to overwrite without asking
            signal.save(str(tmp), overwrite=True)
        return self.record(p)

    def save_array(self, name: str, array, *, axes=None, title: str = "", signal_dims: int = 2, quantity: str = "") -> Path:
        """Save a numpy array as calibrated ``.hspy``; see :func:`array_to_signal`."""
        s = array_to_signal(array, axes=axes, title=title or Path(name).stem, signal_dims=signal_dims, quantity=quantity)
        return self.save_signal(name, s)

    def save_csv(self, name: str, rows, columns) -> Path:
        """Write a table with a header row; ``rows`` are dicts or sequences."""
        p = self.file(name)
        buf = _io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            vals = [r.get(c, "") for c in columns] if isinstance(r, dict) else list(r)
            if len(vals) != len(columns):
                raise ValueError(f"row has {len(vals)} values for {len(columns)} columns")
            w.writerow([_fmt(v) for v in vals])
        self.save_text(name, buf.getvalue())
        return p

    def save_text(self, name: str, text: str) -> Path:
        p = self.file(name)
        with atomic_write(p) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return self.record(p)

    def save_json(self, name: str, obj) -> Path:
        return self.save_text(name, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")

    def save_figure(self, name: str, fig, *, dpi: int = 120) -> Path:
        """Save a matplotlib figure as PNG and close it."""
        import matplotlib.pyplot as plt

        p = self.file(name)
        with atomic_write(p) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        plt.close(fig)
        return self.record(p)

    def write_summary(self, *, parameters=None, results=None, models=None, extra=None) -> Path:
        """Write ``summary.json``: what ran, on what, with which versions, how fast."""
        summary = {
            "command": self.command,
            "created_utc": self._started.isoformat(timespec="seconds"),
            "argv": sys.argv[1:],
            "inputs": [str(p) for p in self.inputs],
            "parameters": parameters or {},
            "models": models or [],
            "results": results or {},
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "total_time_s": round(time.perf_counter() - self._t0, 4),
            "outputs": sorted(self.files),
            "versions": versions(),
        }
        if extra:
            summary.update(extra)
        return self.save_json("summary.json", summary)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return int(v)
    return v


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
