"""Make the small example files in ``datasets/examples/`` (deterministic).

Run from the project root: ``.venv/bin/python datasets/make_examples.py``.
The files are shipped in the repository; this script documents how they were made and
remakes them. Real data are copied from the project's shared data with their licences.

Examples (each a few hundred kB at most):
- ``lattice_hrtem.dm4``: synthetic HRTEM lattice image, 256 x 256, 0.02 nm/px (DM4,
  written with ``mltem.io``'s DigitalMicrograph writer).
- ``lattice_hrtem.tif``: the same image as TIFF (calibration in the TIFF tags).
- ``lattice_hrtem.emd``: the same image as EMD (NCEM flavour).
- ``lattice_lithiated.hspy``: synthetic HRTEM image, 512 x 512 at 0.02 nm/px, with a
  lithiated disc (3 % expansion, radius 1.8 nm) and an edge dislocation, 1e6 e/nm^2, with
  amorphous background (``mltem.simulate.simulate_lattice``); the GPA demo's input.
- ``li_plating_movie.hspy``: 8-frame 128 x 128 movie, 2 nm/px, 0.5 s/frame.
- ``li_plating_movie.gif``: the same movie as an animated GIF (uncalibrated space).
- ``mno_mn_l23.msa``: one real Mn L2,3 spectrum of MnO (Mn2+), EMSA/MSA.
- ``nmc_core_loss_SI.dm3`` and ``nmc_low_loss_SI.dm3``: real STEM-EELS spectrum
  images (2 x 21 x 2048) of an NMC cathode (see README.md for source and licence).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "datasets" / "examples"
SHARED = ROOT.parent / "shared" / "data" / "eels"


def lattice_image(n: int = 256, pixel_nm: float = 0.02, seed: int = 0) -> np.ndarray:
    """Two-beam lattice fringes (0.30 nm and 0.25 nm spacings) with Poisson noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] * pixel_nm
    img = 2.0 + np.cos(2 * np.pi * x / 0.30) + np.cos(2 * np.pi * (0.2 * x + y) / 0.25)
    return rng.poisson(img * 50).astype(np.float32)


def plating_movie(frames: int = 8, n: int = 128, seed: int = 0) -> np.ndarray:
    """A dark electrode on the left with a bright layer growing over time, Poisson noise."""
    rng = np.random.default_rng(seed)
    m = np.full((frames, n, n), 60.0)
    for t in range(frames):
        m[t, :, :30] = 25.0
        m[t, :, 30 : 30 + 2 + 2 * t] = 40.0
    return rng.poisson(m).astype(np.float32)


def main() -> int:
    import hyperspy.api as hs

    from mltem.io._dm_writer import write_dm

    OUT.mkdir(parents=True, exist_ok=True)
    img = lattice_image()
    write_dm(OUT / "lattice_hrtem.dm4", img, scales=[0.02, 0.02], offsets=[0.0, 0.0], units=["nm", "nm"],
             names=["y", "x"], title="synthetic lattice", version=4)
    s = hs.signals.Signal2D(img)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = 0.02, "nm"
    s.metadata.General.title = "synthetic lattice"
    s.save(OUT / "lattice_hrtem.tif", overwrite=True)
    s.save(OUT / "lattice_hrtem.emd", overwrite=True)

    from mltem.simulate import EdgeDislocation, Lattice, LithiatedRegion, simulate_lattice

    lat = Lattice()
    syn = simulate_lattice(
        (512, 512),
        fields=[LithiatedRegion(y_nm=6.4, x_nm=6.4, radius_nm=1.8, expansion=0.03),
                EdgeDislocation(y_nm=3.4, x_nm=3.2, burgers_nm=tuple(lat.vectors_nm[0]))],
        dose_e_per_nm2=1e6, amorphous=0.05, contrast=1.0, seed=3,
    )
    li = hs.signals.Signal2D(syn.image.astype(np.float32))
    for ax in li.axes_manager.signal_axes:
        ax.scale, ax.units = syn.pixel_size_nm, "nm"
    li.metadata.General.title = "synthetic lithiated lattice with a dislocation"
    li.save(OUT / "lattice_lithiated.hspy", overwrite=True)

    movie = plating_movie()
    m = hs.signals.Signal2D(movie)
    for ax in m.axes_manager.signal_axes:
        ax.scale, ax.units = 2.0, "nm"
    t = m.axes_manager.navigation_axes[0]
    t.name, t.scale, t.units = "time", 0.5, "s"
    m.metadata.General.title = "synthetic Li plating"
    m.save(OUT / "li_plating_movie.hspy", overwrite=True)
    import imageio.v3 as iio

    u8 = np.clip(movie / movie.max() * 255, 0, 255).astype(np.uint8)
    iio.imwrite(OUT / "li_plating_movie.gif", u8, duration=500, loop=0)

    ref = np.load(SHARED / "mn2_reference" / "MnO_Mn2plus_spectra.npz")
    e = ref["energy_eV"].astype(float)
    sp = hs.signals.Signal1D(ref["spectra"][0].astype(np.float32))
    sp.set_signal_type("EELS")
    ax = sp.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = float(e[0]), float(e[1] - e[0]), "eV", "Energy loss"
    sp.metadata.General.title = "MnO Mn L2,3 (Mn2+)"
    sp.save(OUT / "mno_mn_l23.msa", overwrite=True)

    for src, dst in (("core_loss_SI.dm3", "nmc_core_loss_SI.dm3"), ("low_loss_SI.dm3", "nmc_low_loss_SI.dm3")):
        shutil.copyfile(SHARED / "nmc_cathode_si" / src, OUT / dst)
    shutil.copyfile(SHARED / "nmc_cathode_si" / "LICENSE", OUT / "LICENSE-nmc_cathode_si")
    shutil.copyfile(SHARED / "mn2_reference" / "LICENSE", OUT / "LICENSE-mn2_reference")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name:<28} {p.stat().st_size / 1e3:8.1f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
