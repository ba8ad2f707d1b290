"""Reading diffraction patterns from files: single patterns, stacks, 4D-STEM, folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mltem._errors import MltemError

__all__ = ["PatternSource", "open_patterns"]


@dataclass
class PatternSource:
    """One file of patterns.

    Attributes
    ----------
    path : Path
    n_frames : int
        Number of patterns (navigation positions, flattened in C order).
    nav_shape : tuple
        Navigation shape (() for one pattern, (n,) for a stack, (ny, nx) for 4D-STEM).
    pixel_size_inv_nm : float or None
        Calibration of the signal axes if they are in 1/nm.
    signal : hyperspy signal
    """

    path: Path
    n_frames: int
    nav_shape: tuple
    pixel_size_inv_nm: float | None
    signal: object

    def frame(self, i: int) -> np.ndarray:
        """Pattern ``i`` (flat navigation index) as a (y, x) float64 array."""
        data = self.signal.data
        if self.nav_shape:
            idx = np.unravel_index(i, self.nav_shape)
            data = data[idx]
        return np.asarray(data, dtype=np.float64)


def _files(paths) -> list[Path]:
    from mltem.io._load import _supported_extensions

    exts = _supported_extensions()
    out = []
    for p in map(Path, paths):
        if p.is_dir() and p.suffix.lower() not in (".zspy", ".zarr"):
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."))
            if not found:
                raise MltemError("the folder holds no readable pattern files", path=p)
            out += found
        else:
            out.append(p)
    if not out:
        raise MltemError("no input patterns given")
    return out


def open_patterns(paths) -> list[PatternSource]:
    """Open pattern files (or folders of them) lazily enough to stream their frames.

    Parameters
    ----------
    paths : sequence of path
        Files hyperspy/rosettasciio reads (dm3/dm4/emd/hspy/mrc/tif, ...), ``.npy``, or
        folders of such files.

    Returns
    -------
    list of PatternSource

    Raises
    ------
    MltemError
        Missing/unreadable files, spectra, or data that are not 2D patterns.
    """
    from mltem import io

    out = []
    for f in _files(paths):
        s = io.load(f)
        kind = io.require_kind(s, ("image", "diffraction"), path=f)
        io.check_finite(s, path=f)
        sig = s.axes_manager.signal_axes
        nav = tuple(int(n) for n in s.data.shape[: s.data.ndim - 2])
        px = None
        units = {ax.units for ax in sig}
        if units == {"1/nm"}:
            px = float(sig[0].scale)
            if abs(sig[1].scale - sig[0].scale) > 1e-3 * abs(sig[0].scale):
                raise MltemError(f"non-square calibration ({sig[0].scale} x {sig[1].scale} 1/nm per pixel)", path=f)
        elif kind == "image" and units & {"nm"}:
            raise MltemError("holds a real-space image (axes in nm), not a diffraction pattern", path=f)
        shape = s.data.shape[-2:]
        if min(shape) < 32:
            raise MltemError(f"patterns of {shape[0]} x {shape[1]} pixels are too small to index (need >= 32)", path=f)
        out.append(PatternSource(Path(f), int(np.prod(nav)) if nav else 1, nav, px, s))
    return out
