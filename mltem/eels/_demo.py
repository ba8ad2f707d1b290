"""The EELS valence demo step: Mn valence of a real NMC spectrum image and of real MnO."""
from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["step_valence"]


def step_valence(out: Path) -> str:
    """Run ``mltem valence`` on the shipped NMC spectrum image (Mn, Co, Ni) and the MnO spectrum.

    Returns
    -------
    str
        Markdown section with a table of mean valences and the figures.
    """
    from mltem.demo._run import examples_dir, run_cli

    ex = examples_dir()
    rows, figs = [], []
    jobs = [("mno", ex / "mno_mn_l23.msa", "Mn", [])] + [
        (f"nmc_{el.lower()}", ex / "nmc_core_loss_SI.dm3", el, ["--low-loss", str(ex / "nmc_low_loss_SI.dm3")]) for el in ("Mn", "Co", "Ni")
    ]
    for name, f, el, extra in jobs:
        d = out / name
        run_cli("valence", str(f), "--element", el, "--out", str(d), "--force", *extra)
        with open(d / "valence.csv", newline="") as fh:
            table = list(csv.DictReader(fh))
        v = [float(r["valence"]) for r in table if r["valence"]]
        ratio = [float(r["l3_l2_ratio"]) for r in table if r["l3_l2_ratio"]]
        rel = [float(r["reliability"]) for r in table if r["reliability"]]
        mean = lambda a: sum(a) / len(a) if a else float("nan")  # noqa: E731
        median = lambda a: sorted(a)[len(a) // 2] if a else float("nan")  # noqa: E731
        rows.append(f"| `{f.name}` | {el} | {len(table)} | {mean(v):.2f} | {min(v):.2f}-{max(v):.2f} | {median(ratio):.2f} | {mean(rel):.2f} |")
        figs.append(f"![{el} valence, {f.name}]({out.name}/{name}/valence.png)")
    table = (
        "| file | element | spectra | mean valence | range | median L3/L2 (Pearson) | mean reliability |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return (
        "## EELS valence (`mltem valence`)\n\n"
        "Oxidation state from L2,3 edges by the shipped per-element networks, beside the classical white-line "
        "ratio and L3 onset. `mno_mn_l23.msa` is real MnO (Mn2+, uncalibrated axis); the NMC spectrum image is a "
        "real layered cathode (nominally Ni2+/Ni3+, Co3+, Mn4+), deconvolved with its low-loss; its energy axis "
        "is off by 12-23 eV (found and handled by the coarse edge alignment). A reliability near 0 (the weak, "
        "noisy Co and Ni edges of this small map) says the spectra are unlike anything the network was trained "
        "on: do not trust those valences.\n\n"
        + table + "\n\n" + " ".join(figs) + "\n"
    )
