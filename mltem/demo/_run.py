"""The demo runner.

Each step is a function ``step(out: Path) -> str`` that runs one task on the shipped
examples (usually through the CLI, in-process) into ``out`` and returns a Markdown
section for the report. Capability modules add their step to :data:`STEPS`.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from mltem._errors import MltemError

__all__ = ["STEPS", "examples_dir", "run_demo", "run_cli"]

log = logging.getLogger(__name__)


def examples_dir() -> Path:
    """The shipped example files (``datasets/examples`` of the project)."""
    p = Path(__file__).resolve().parents[2] / "datasets" / "examples"
    if not p.is_dir():
        raise MltemError(f"the shipped examples are missing (expected {p.name}/ in the project's datasets/)")
    return p


def run_cli(*argv: str) -> None:
    """Run an ``mltem`` command in-process; raise if it fails."""
    from mltem.cli import main

    code = main(["--quiet", *argv])
    if code != 0:
        raise MltemError(f"'mltem {' '.join(argv)}' exited with status {code}")


def _step_info(out: Path) -> str:
    """Describe every shipped example and draw a preview of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mltem import io

    rows, figs = [], []
    files = sorted(p for p in examples_dir().iterdir() if p.is_file() and not p.name.startswith((".", "README", "LICENSE")))
    for f in files:
        s = io.load(f)
        d = io.describe(s)
        cal = ", ".join(
            f"{'' if a['name'] in ('', '<undefined>') else a['name'] + ' '}{a['scale']:.4g} {a['units'] or 'px'}"
            for a in d["axes"]
        )
        rows.append(f"| `{f.name}` | {d['kind']} | {tuple(d['shape'])} | {cal} |")
        fig, ax = plt.subplots(figsize=(4, 3))
        data = np.asarray(s.data, dtype=float)
        if d["kind"] == "spectrum":
            e = s.axes_manager.signal_axes[0].axis
            ax.plot(e, data.reshape(-1, data.shape[-1]).mean(0), lw=1)
            ax.set_xlabel(f"energy loss ({s.axes_manager.signal_axes[0].units})")
            ax.set_ylabel("counts (mean)")
        else:
            img = data.reshape(-1, *data.shape[-2:])[0]
            sx = s.axes_manager.signal_axes
            ext = [0, img.shape[1] * sx[0].scale, img.shape[0] * sx[1].scale, 0]
            ax.imshow(img, cmap="gray", extent=ext)
            ax.set_xlabel(sx[0].units or "px")
        ax.set_title(f.name, fontsize=9)
        name = f"{f.stem}_{f.suffix[1:]}.png"
        fig.savefig(out / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        figs.append(f"![{f.name}]({out.name}/{name})")
    table = "| file | kind | shape | calibration |\n|---|---|---|---|\n" + "\n".join(rows)
    return "## Example files (`mltem info`)\n\n" + table + "\n\n" + " ".join(figs) + "\n"


# (name, title, function or "module:function"); each capability adds its step here.
STEPS: list[tuple[str, str, Callable[[Path], str] | str]] = [
    ("info", "Example files", _step_info),
    ("gpa", "Strain maps (GPA)", "mltem.gpa._demo:demo_step"),
    ("holo", "Electron holography", "mltem.holography._demo:step_holo"),
    ("valence", "EELS valence", "mltem.eels._demo:step_valence"),
    ("index", "SAED indexing", "mltem.diffraction._demo:demo_step"),
    ("segment", "Movie segmentation", "mltem.segment._demo:demo_step"),
    ("fronts", "Reaction fronts", "mltem.fronts._demo:demo_step"),
]


def _resolve(fn):
    if isinstance(fn, str):
        import importlib

        module, _, name = fn.partition(":")
        return getattr(importlib.import_module(module), name)
    return fn


def run_demo(out, *, force: bool = False, only=None) -> dict:
    """Run every demo step into ``out`` and write ``out/report.md``.

    A failing step is reported in the report and in ``summary.json`` but does not stop
    the others; the return value says which failed.
    """
    from mltem.io import OutputDir

    od = OutputDir(out, force=force, command="demo")
    sections, results = [], {}
    for name, title, fn in STEPS:
        if only and name not in only:
            continue
        sub = od.path / name
        sub.mkdir(exist_ok=True)
        t = time.perf_counter()
        try:
            sections.append(_resolve(fn)(sub))
            results[name] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - one failing step must not hide the others
            log.error("demo step %s failed: %s", name, exc)
            log.debug(traceback.format_exc())
            sections.append(f"## {title}\n\n**failed**: {exc}\n")
            results[name] = {"ok": False, "error": str(exc)}
        results[name]["time_s"] = round(time.perf_counter() - t, 3)
        for p in sorted(sub.rglob("*")):
            if p.is_file():
                od.record(p)
    from mltem import __version__

    report = f"# mltem {__version__} demo\n\n" + "\n".join(sections)
    report += "\n## Timings\n\n| step | ok | time (s) |\n|---|---|---|\n" + "\n".join(
        f"| {k} | {'yes' if v['ok'] else 'NO'} | {v['time_s']} |" for k, v in results.items()
    ) + "\n"
    od.save_text("report.md", report)
    od.write_summary(results=results)
    return results
