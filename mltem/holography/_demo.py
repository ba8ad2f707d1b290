"""The holography demo step and the shipped example hologram pair."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["make_example_holograms", "step_holo", "EXAMPLE_OBJECT", "EXAMPLE_REFERENCE"]

EXAMPLE_OBJECT = "hologram_object.hspy"
EXAMPLE_REFERENCE = "hologram_reference.hspy"


def make_example_holograms(folder) -> tuple[Path, Path]:
    """Write the example pair: a charged oxide particle, 256 x 256, 0.5 nm/px, 300 kV.

    The particle is a sphere of radius 12 nm with a mean inner potential of 15 V that
    carries +40 e spread uniformly through it; fringe period 4 px, contrast 0.3, 2000
    electrons per pixel, Fresnel fringes of the biprism at the borders (deterministic,
    seed 0). Saved as float32 ``.hspy`` with calibrated axes and beam energy.

    Parameters
    ----------
    folder : str or os.PathLike
        Destination folder (created).

    Returns
    -------
    tuple of Path
        Object and reference files.
    """
    import hyperspy.api as hs

    from mltem.simulate import phase_charged_sphere, phase_mip_sphere, simulate_hologram

    n, px = 256, 0.5
    phase = (phase_mip_sphere((n, n), pixel_size_nm=px, radius_nm=12, mip_v=15)
             + phase_charged_sphere((n, n), pixel_size_nm=px, radius_nm=12, charge_e=40))
    sim = simulate_hologram(phase, dose=2000, contrast=0.3, fringe_spacing_px=4.0, pixel_size_nm=px, seed=0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, arr, title in ((EXAMPLE_OBJECT, sim.hologram, "synthetic hologram: charged particle"),
                             (EXAMPLE_REFERENCE, sim.reference, "synthetic vacuum reference hologram")):
        s = hs.signals.Signal2D(arr.astype(np.float32))
        for ax, nm in zip(s.axes_manager.signal_axes, ("x", "y")):
            ax.scale, ax.units, ax.name = px, "nm", nm
        s.metadata.General.title = title
        s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
        s.save(folder / name, overwrite=True, compression="gzip")
        out.append(folder / name)
    return out[0], out[1]


def step_holo(out: Path) -> str:
    """Demo: reconstruct the shipped hologram pair into phase, potential and charge maps."""
    import json

    from mltem.demo._run import examples_dir, run_cli

    ex = examples_dir()
    run_cli("holo", str(ex / EXAMPLE_OBJECT), "--reference", str(ex / EXAMPLE_REFERENCE), "--out", str(out),
            "--force", "--thickness", "24", "--vacuum", "0", "32", "0", "32", "--ramp", "offset",
            "--profile", "128", "20", "128", "236", "12")
    res = json.loads((out / "summary.json").read_text())["results"]
    return (
        "## Electron holography (`mltem holo`)\n\n"
        f"Synthetic charged particle (12 nm radius, 15 V mean inner potential, +40 e): sideband at "
        f"{res['sideband_ky_kx_px']} Fourier px, {res['aperture']} aperture of radius "
        f"{res['aperture_radius_px']} px chosen from the noise (resolution {res['resolution_nm']} nm). "
        "Phase, potential (for 24 nm thickness) and projected charge density:\n\n"
        f"![phase]({out.name}/phase.png)\n\n![profile]({out.name}/profile.png)\n"
    )
