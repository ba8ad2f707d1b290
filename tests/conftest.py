"""Shared fixtures: small calibrated files in the formats TEM users meet."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

os.environ.setdefault("MLTEM_PROGRESS", "0")
logging.getLogger("hyperspy").setLevel(logging.ERROR)


def _image_signal(data, scale, units):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(data)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = scale, units
    return s


@pytest.fixture(scope="session")
def lattice():
    """A 64 x 48 float32 image with a known pattern (rows differ from columns)."""
    y, x = np.mgrid[0:64, 0:48]
    return (100 + 10 * np.cos(2 * np.pi * x / 6.0) + 5 * np.sin(2 * np.pi * y / 9.0)).astype(np.float32)


@pytest.fixture()
def image_files(tmp_path, lattice):
    """The same image, 0.05 nm/px, in hspy, tif, emd and npy (npy uncalibrated)."""
    s = _image_signal(lattice, 0.05, "nm")
    out = {}
    for ext in ("hspy", "tif", "emd", "zspy"):
        p = tmp_path / f"img.{ext}"
        s.save(p, overwrite=True)
        out[ext] = p
    np.save(tmp_path / "img.npy", lattice)
    out["npy"] = tmp_path / "img.npy"
    return out


@pytest.fixture()
def spectrum_file(tmp_path):
    import hyperspy.api as hs

    e = 620 + 0.25 * np.arange(400)
    data = (1000 * (e / 620) ** -3 + 200 * np.exp(-((e - 642) ** 2) / 4)).astype(np.float32)
    s = hs.signals.Signal1D(data)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = 620.0, 0.25, "eV"
    p = tmp_path / "spec.msa"
    s.save(p, overwrite=True)
    return p
