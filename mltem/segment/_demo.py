"""The ``segment`` step of ``mltem demo`` and the example movie it runs on."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["EXAMPLE", "make_example_movie", "demo_step"]

EXAMPLE = "li_plating_sim.hspy"
EXAMPLE_SETTINGS = dict(n_frames=12, shape=(256, 256), kind="liquid", seed=20261127, pixel_size_nm=5.0,
                        frame_time_s=2.0, dose=60.0, n_dendrites=3, n_deposits=2, n_bubbles=2, sei_max_nm=180.0,
                        sei_tau_s=15.0, electrode_fraction=0.3, edge_angle_deg=0.0)


def make_example_movie(path) -> Path:
    """Write the shipped example (12 frames, 256 x 256, uint16 counts, 5 nm/px, 2 s/frame).

    The simulator's ground truth per frame is stored in the file's
    ``original_metadata.simulation`` (SEI thickness, lithium area, dendrite count and
    longest dendrite) and the exact masks are not shipped (remake them with
    :func:`mltem.simulate.simulate_movie` and ``EXAMPLE_SETTINGS``).
    """
    from mltem.simulate import simulate_movie

    m = simulate_movie(**EXAMPLE_SETTINGS)
    s = _counts_signal(m, "simulated Li plating in a liquid cell (mltem.simulate.simulate_movie)")
    s.original_metadata.set_item("simulation.settings", json.dumps({k: list(v) if isinstance(v, tuple) else v
                                                                    for k, v in EXAMPLE_SETTINGS.items()}))
    for k in ("sei_thickness_nm", "lithium_area_nm2", "dendrite_count", "longest_dendrite_nm"):
        s.original_metadata.set_item(f"simulation.{k}", np.asarray(getattr(m, k), float).tolist())
    path = Path(path)
    s.save(path, overwrite=True)
    return path


def _counts_signal(m, title: str):
    """A simulated movie as a calibrated signal of uint16 counts (time s, y and x nm)."""
    from mltem.io import array_to_signal

    return array_to_signal(np.clip(np.rint(m.frames), 0, 65535).astype(np.uint16),
                           axes=[{"name": "time", "scale": m.frame_time_s, "units": "s"},
                                 {"name": "y", "scale": m.pixel_size_nm, "units": "nm"},
                                 {"name": "x", "scale": m.pixel_size_nm, "units": "nm"}],
                           title=title)


def demo_step(out: Path) -> str:
    """Segment the shipped example with the shipped model; report masks, plots and truth."""
    from mltem import io
    from mltem.demo._run import examples_dir, run_cli

    movie = examples_dir() / EXAMPLE
    run_cli("segment", str(movie), "--out", str(out), "--force")
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((out / "summary.json").read_text())
    sim = io.load(movie).original_metadata.get_item("simulation")
    true_sei = list(sim["sei_thickness_nm"]) if sim is not None else [float("nan")] * len(rows)
    nan = [float("nan")] * len(rows)
    true_area = list(sim["lithium_area_nm2"]) if sim is not None else nan
    true_n = list(sim["dendrite_count"]) if sim is not None else nan
    true_long = list(sim["longest_dendrite_nm"]) if sim is not None else nan
    lines = ["| frame | time (s) | SEI (nm) | true SEI (nm) | Li area (10^3 nm^2) | true Li area | dendrites | true | "
             "longest (nm) | true longest (nm) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r, ts, ta, tn, tl in zip(rows, true_sei, true_area, true_n, true_long):
        sei = float(r["sei_thickness_nm"]) if r["sei_thickness_nm"] else float("nan")
        lines.append(f"| {r['frame']} | {float(r['time_s']):.0f} | {sei:.1f} | {ts:.1f} | "
                     f"{float(r['lithium_area_nm2']) / 1e3:.1f} | {ta / 1e3:.1f} | {r['dendrite_count']} | {tn:.0f} | "
                     f"{float(r['longest_dendrite_nm']):.0f} | {tl:.0f} |")
    with open(out / "tracks.csv", newline="") as f:
        tracks = [t for t in csv.DictReader(f) if t["growth_velocity_nm_s"]]  # empty: too few frames
    if tracks:
        lines += ["", "Dendrites followed over >= 3 frames (`tracks.csv`):", "",
                  "| track | frames | length first -> last (nm) | growth velocity (nm/s) |", "|---|---|---|---|"]
        lines += [f"| {t['track']} | {t['first_frame']}-{t['last_frame']} | {float(t['length_first_nm']):.0f} -> "
                  f"{float(t['length_last_nm']):.0f} | {float(t['growth_velocity_nm_s']):.1f} +/- "
                  f"{float(t['growth_velocity_se_nm_s']):.1f} |" for t in tracks]
    model = summary["models"][0]["name"] if summary["models"] else "classical labeller"
    d = out.name
    return (
        "## Movie segmentation (`mltem segment`)\n\n"
        f"`{EXAMPLE}`: a simulated liquid-cell movie (12 frames, 256 x 256, 5 nm/px, 2 s/frame; the "
        f"simulator's truth is stored in the file). Model: `{model}`; "
        f"{summary['timings_s'].get('segment', 0):.2f} s for the masks.\n\n"
        f"![overlay]({d}/overlay.png)\n\n![metrics]({d}/metrics.png)\n\n" + "\n".join(lines) + "\n"
        + _dark_field(out)
    )


def _dark_field(out: Path) -> str:
    """The example's scene imaged as annular dark-field STEM (made here, not shipped),
    segmented with ``--detector haadf``."""
    from mltem.demo._run import run_cli
    from mltem.simulate import simulate_movie

    m = simulate_movie(**EXAMPLE_SETTINGS, detector="haadf")
    movie = out / "haadf_movie.hspy"
    _counts_signal(m, "the example's scene as HAADF STEM").save(movie, overwrite=True)
    res = out / "haadf"
    run_cli("segment", str(movie), "--out", str(res), "--force", "--detector", "haadf", "--no-movie")
    with open(res / "metrics.csv", newline="") as f:
        got = np.array([float(r["sei_thickness_nm"] or "nan") for r in csv.DictReader(f)])
    err = np.abs(got - m.sei_thickness_nm) / m.sei_thickness_nm
    summary = json.loads((res / "summary.json").read_text())
    d = f"{out.name}/haadf"
    return (
        "\n### The same scene as dark-field STEM (`--detector haadf`)\n\n"
        f"Imaged as annular dark-field STEM (denser is brighter, no fringes; `{movie.name}`, made by the demo). "
        f"Model: `{summary['models'][0]['name']}`. SEI thickness against the simulator's truth: median error "
        f"{100 * np.nanmedian(err):.1f} %, largest {100 * np.nanmax(err):.1f} %.\n\n"
        f"![overlay]({d}/overlay.png)\n\n![metrics]({d}/metrics.png)\n"
    )
