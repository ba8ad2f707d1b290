"""``mltem simulate KIND --out DIR``: labelled synthetic data for a task.

Each kind writes its data and its exact answers (calibrated ``.hspy`` and ``.csv``) so
that a user can check mltem, or another tool, against a known truth:

- ``lattice``  HRTEM lattice with a lithiated disc and an edge dislocation -> ``image.hspy``,
  ``strain_true.hspy`` (exx, eyy, exy, rotation)
- ``hologram`` off-axis hologram of a sphere carrying 60 e -> ``hologram.hspy``,
  ``reference.hspy``, ``phase_true.hspy``
- ``eels``     L2,3 spectra of random oxidation-state mixtures of ``--element`` ->
  ``spectra.hspy``, ``truth.csv`` (fractions, mean valence)
- ``saed``     SAED patterns of ``--phase`` phases -> ``patterns.hspy``, ``truth.csv``
- ``movie``    in-situ plating movie -> ``movie.hspy``, ``masks_true.hspy``, ``truth.csv``
- ``fronts``   lithiating nanowire movie -> ``movie.hspy``, ``masks_true.hspy``, ``truth.csv``
"""
from __future__ import annotations

import numpy as np

from mltem._physics import DETECTORS
from mltem.cli._main import add_output_arguments

KINDS = ("lattice", "hologram", "eels", "saed", "movie", "fronts")


def add_arguments(p) -> None:
    p.add_argument("kind", choices=KINDS, help="what to simulate")
    add_output_arguments(p)
    p.add_argument("--n", type=int, default=None, help="number of frames / spectra / patterns")
    p.add_argument("--size", type=int, default=None, help="image size in px (square)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--element", default="Mn", help="element for 'eels' (Mn, Fe, Co, Ni, Ti, V, Cr, Cu)")
    p.add_argument("--phase", action="append", help="phase(s) for 'saed' (CIF or built-in name; repeat)")
    p.add_argument("--dose", type=float, default=None, help="electron dose (kind-specific units; see --help of the generator)")
    p.add_argument("--detector", choices=DETECTORS, default="bf",
                   help="'movie': bright-field TEM (denser is darker) or annular dark-field STEM (denser is brighter)")


def _axes(n_nav: int, scale: float, units: str, nav=None):
    spatial = [{"name": "y", "scale": scale, "units": units}, {"name": "x", "scale": scale, "units": units}]
    return ([nav] if n_nav else []) + spatial


def _lattice(args, out):
    from mltem.simulate import EdgeDislocation, Lattice, LithiatedRegion, simulate_lattice

    n = args.size or 512
    px = 0.02
    half = n * px / 2
    lat = Lattice()
    syn = simulate_lattice(
        (n, n), pixel_size_nm=px,
        fields=[LithiatedRegion(y_nm=1.25 * half, x_nm=1.25 * half, radius_nm=0.35 * half, expansion=0.03),
                EdgeDislocation(y_nm=0.66 * half, x_nm=0.62 * half, burgers_nm=tuple(lat.vectors_nm[0]))],
        dose_e_per_nm2=args.dose or 1e6, amorphous=0.05, contrast=1.0, seed=args.seed,
    )
    out.save_array("image.hspy", syn.image.astype(np.float32), axes=_axes(0, px, "nm"), title="synthetic lattice")
    comp = {"name": "component (exx, eyy, exy, rotation)", "scale": 1.0, "units": ""}
    out.save_array("strain_true.hspy", syn.strain.astype(np.float32), axes=[comp, *_axes(0, px, "nm")],
                   title="exact strain", quantity="strain (rotation in rad)")
    return {"pixel_size_nm": px, "g_vectors_per_nm": syn.g_vectors}


def _hologram(args, out):
    from mltem.simulate import phase_charged_sphere, simulate_hologram

    n = args.size or 256
    px = 0.5
    phase = phase_charged_sphere((n, n), pixel_size_nm=px, radius_nm=n * px / 10, charge_e=60.0)
    syn = simulate_hologram(phase, dose=args.dose or 1000.0, pixel_size_nm=px, seed=args.seed)
    for name, arr in (("hologram.hspy", syn.hologram), ("reference.hspy", syn.reference)):
        out.save_array(name, arr.astype(np.float32), axes=_axes(0, px, "nm"), title=name[:-5])
    out.save_array("phase_true.hspy", syn.phase.astype(np.float32), axes=_axes(0, px, "nm"), title="exact phase", quantity="Phase (rad)")
    return {"pixel_size_nm": px, "sideband": list(map(float, syn.sideband))}


def _eels(args, out):
    from mltem.simulate import element_model, random_l23_batch

    n = args.n or 64
    rng = np.random.default_rng(args.seed)
    energy, spectra, fractions = random_l23_batch(args.element, n, rng)
    m = element_model(args.element)
    vals = np.asarray(m.valences, float)
    nav = {"name": "spectrum", "scale": 1.0, "units": ""}
    s = out.save_array("spectra.hspy", spectra.astype(np.float32),
                       axes=[nav, {"name": "Energy loss", "scale": float(energy[1] - energy[0]), "offset": float(energy[0]), "units": "eV"}],
                       signal_dims=1, title=f"{args.element} L2,3")
    cols = ["index", "valence"] + [f"frac_{args.element.lower()}{int(v)}" for v in vals]
    rows = [[i, float(f @ vals), *map(float, f)] for i, f in enumerate(fractions)]
    out.save_csv("truth.csv", rows, cols)
    return {"element": args.element, "valences": vals.tolist(), "file": str(s.name)}


def _saed(args, out):
    from mltem.diffraction import build_templates, load_phase
    from mltem.simulate import simulate_saed

    phases = [load_phase(p) for p in (args.phase or ["Si", "LiCoO2"])]
    bank = build_templates(phases)
    n, size = args.n or 8, args.size or 256
    syn = simulate_saed(bank, n, shape=(size, size), seed=args.seed)
    px = float(np.median(syn.pixel_size_inv_nm))
    nav = {"name": "pattern", "scale": 1.0, "units": ""}
    out.save_array("patterns.hspy", syn.images.astype(np.float32), axes=_axes(1, px, "1/nm", nav), title="SAED patterns")
    cols = ["frame", "phase", "zone_u", "zone_v", "zone_w", "inplane_deg", "pixel_size_inv_nm", "true_pixel_size_inv_nm"]
    rows = [[i, syn.phase[i], *map(int, syn.zone[i]), float(np.degrees(syn.inplane_rad[i])), float(syn.pixel_size_inv_nm[i]),
             float(syn.true_pixel_size_inv_nm[i])] for i in range(n)]
    out.save_csv("truth.csv", rows, cols)
    return {"phases": [p.name for p in phases]}


def _movie_outputs(out, frames, masks, px, dt, rows, cols):
    nav = {"name": "time", "scale": dt, "units": "s"}
    out.save_array("movie.hspy", frames.astype(np.float32), axes=_axes(1, px, "nm", nav), title="synthetic movie")
    out.save_array("masks_true.hspy", masks.astype(np.uint8), axes=_axes(1, px, "nm", nav), title="exact labels")
    out.save_csv("truth.csv", rows, cols)


def _movie(args, out):
    from mltem.simulate import MOVIE_CLASSES, simulate_movie

    n, size = args.n or 16, args.size or 256
    kw = {"dose": args.dose} if args.dose else {}
    m = simulate_movie(n, (size, size), seed=args.seed, detector=args.detector, **kw)
    cols = ["frame", "time_s", "sei_thickness_nm", "lithium_area_nm2", "dendrite_count", "longest_dendrite_nm"]
    rows = [[i, i * m.frame_time_s, m.sei_thickness_nm[i], m.lithium_area_nm2[i], int(m.dendrite_count[i]), m.longest_dendrite_nm[i]]
            for i in range(n)]
    _movie_outputs(out, m.frames, m.masks, m.pixel_size_nm, m.frame_time_s, rows, cols)
    return {"classes": list(MOVIE_CLASSES), "pixel_size_nm": m.pixel_size_nm, "frame_time_s": m.frame_time_s,
            "detector": args.detector}


def _fronts(args, out):
    from mltem.simulate import FRONT_CLASSES, simulate_front_movie

    kw = {"n_frames": args.n} if args.n else {}
    if args.size:
        kw["shape"] = (args.size // 2, args.size)
    f = simulate_front_movie("wire", seed=args.seed, **kw)
    px = float(f.front_nm[-1] / f.front_px[-1]) if f.front_px[-1] else 1.0
    dt = float(f.time_s[1] - f.time_s[0]) if len(f.time_s) > 1 else 1.0
    rows = [[i, float(f.time_s[i]), float(f.front_px[i]), float(f.front_nm[i])] for i in range(len(f.time_s))]
    _movie_outputs(out, f.frames, f.masks, px, dt, rows, ["frame", "time_s", "front_position_px", "front_position_nm"])
    return {"classes": list(FRONT_CLASSES), "growth": f.params}


def run(args) -> int:
    from mltem._errors import MltemError
    from mltem.io import OutputDir

    if args.n is not None and args.n < 1:
        raise MltemError("--n must be >= 1")
    if args.size is not None and args.size < 32:
        raise MltemError("--size must be >= 32 px")
    out = OutputDir(args.out, force=args.force, command=f"simulate {args.kind}")
    with out.timer("simulate"):
        info = {"lattice": _lattice, "hologram": _hologram, "eels": _eels, "saed": _saed, "movie": _movie, "fronts": _fronts}[args.kind](args, out)
    out.write_summary(parameters={"kind": args.kind, "n": args.n, "size": args.size, "seed": args.seed}, results=info)
    print(f"simulated {args.kind} -> {args.out}: {', '.join(out.files)}")
    return 0
