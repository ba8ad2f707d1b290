"""Demo step: strain maps of the shipped synthetic lattice image."""
from __future__ import annotations

import json
from pathlib import Path


def demo_step(out: Path) -> str:
    """Run ``mltem gpa`` on ``datasets/examples/lattice_lithiated.hspy`` into ``out``; return Markdown."""
    from mltem.demo._run import examples_dir, run_cli

    ex = examples_dir()
    image = ex / "lattice_lithiated.hspy"
    run_cli("gpa", str(image), "--out", str(out), "--force")
    summ = json.loads((out / "summary.json").read_text())
    par, res = summ["parameters"], summ["results"]
    g = ", ".join(f"({gy:.3f}, {gx:.3f})" for gy, gx in par["g_vectors_per_nm"])
    d = ", ".join(f"{v:.3f}" for v in par["lattice_spacings_nm"])
    rows = "\n".join(
        f"| {c} | {res[c + '_mean']:.2e} | {res[c + '_std']:.2e} |" for c in ("exx", "eyy", "exy", "rotation_rad")
    )
    return (
        "## Strain maps (GPA, `mltem gpa`)\n\n"
        f"`{image.name}` (synthetic: a lithiated disc with 3 % expansion lower right, an edge dislocation "
        f"upper left): reflections g = {g} 1/nm (spacings {d} nm), {par['mask']} mask of "
        f"{par['mask_size_per_nm']:.3f} 1/nm (real-space width {par['mask_width_nm']:.2f} nm), reference "
        f"`{par['reference']}`, {summ['total_time_s']:.2f} s. The veiled band is within two mask widths of the "
        "edges, where GPA is unreliable.\n\n"
        "| component | interior mean | interior std |\n|---|---|---|\n" + rows + "\n\n"
        f"![strain maps]({out.name}/strain.png)\n"
    )
