"""``mltem segment MOVIE --out DIR``: masks of electrode, SEI, lithium and bubbles per
frame, and the SEI / lithium / dendrite metrics they give.

Writes ``masks.hspy``, ``metrics.csv`` (one row per frame), ``dendrites.csv`` (one row
per dendrite per frame, with its track), ``tracks.csv`` (one row per tracked dendrite:
its growth velocity, the slope of its length against time, and that slope's standard
error), ``overlay.png``, ``metrics.png``, ``overlay.gif`` and ``summary.json``.
"""
from __future__ import annotations

import logging

from mltem._physics import DETECTOR_NAMES, DETECTORS
from mltem.cli._main import add_output_arguments

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("movie", help="in-situ movie (hspy, dm3/dm4, emd, ser, mrc, tif, mp4, gif, ...); a single image also works")
    add_output_arguments(p)
    p.add_argument("--detector", choices=DETECTORS, default="bf",
                   help="the movie's contrast: bright-field TEM (bf, default: denser is darker) or annular dark-field "
                        "STEM (haadf: denser is brighter); picks the shipped network and the classical labeller's "
                        "contrast")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="registry name or .onnx/.json path (default: segment-unet for bf, segment-unet-haadf for "
                        "haadf; for another contrast fine-tune one with 'mltem train segment')")
    p.add_argument("--classical", action="store_true", help="use the classical labeller (no network)")
    p.add_argument("--tile", type=int, default=512, metavar="PX", help="tile size for large frames, px (multiple of 16; default 512)")
    p.add_argument("--overlap", type=int, default=32, metavar="PX", help="tile overlap, px (default 32)")
    p.add_argument("--smooth-frames", type=int, default=3, metavar="N", help="temporal majority filter window, frames (1: off; default 3)")
    p.add_argument("--chunk", type=int, default=16, metavar="N", help="frames read and segmented at a time (default 16)")
    p.add_argument("--pixel-size-nm", type=float, metavar="NM", help="override/supply the pixel size (nm/px)")
    p.add_argument("--frame-time-s", type=float, metavar="S", help="override/supply the time between frames (s)")
    p.add_argument("--no-refine", action="store_true",
                   help="report the SEI thickness measured on the masks only (no edge-profile refinement)")
    p.add_argument("--no-movie", action="store_true", help="skip the overlay GIF (written for movies of <= 200 frames)")


def _calibration(signal, args):
    """Pixel size (nm) and frame time (s) from the file, the options or fallbacks."""
    from mltem._errors import MltemError

    notes = []
    sx = signal.axes_manager.signal_axes
    px = args.pixel_size_nm
    if px is None:
        units = {a.units for a in sx}
        if units == {"nm"}:
            px = float(sx[0].scale)
            if abs(sx[0].scale - sx[1].scale) > 0.01 * abs(sx[0].scale):
                notes.append(f"non-square pixels ({sx[0].scale:g} x {sx[1].scale:g} nm); using {px:g} nm")
        else:
            px = 1.0
            notes.append("the file has no spatial calibration in nm; lengths are in pixels (pass --pixel-size-nm)")
    dt = args.frame_time_s
    if dt is None:
        nav = signal.axes_manager.navigation_axes
        if nav and nav[0].units == "s" and nav[0].scale > 0:
            dt = float(nav[0].scale)
        else:
            dt = 1.0
            notes.append("the file has no time axis in s; times are frame numbers (pass --frame-time-s)")
    if not px > 0 or not dt > 0:
        raise MltemError(f"--pixel-size-nm and --frame-time-s must be > 0, got {px}, {dt}")
    return px, dt, notes


def run(args) -> int:
    import numpy as np

    from mltem import io
    from mltem._errors import MltemError
    from mltem.segment import (
        DENDRITE_COLUMNS,
        METRIC_COLUMNS,
        TRACK_COLUMNS,
        contrast_mismatch,
        dendrite_tracks,
        edge_profiles,
        load_sei_refiner,
        measure_movie,
        refine_sei_rows,
        segment_stream,
        trained_detector,
    )
    from mltem.segment._plot import contact_sheet, metrics_figure, write_overlay_movie

    if args.tile < 16 or args.overlap < 0 or args.overlap >= args.tile // 2:
        raise MltemError(f"--tile must be >= 16 and 0 <= --overlap < tile/2, got tile {args.tile}, overlap {args.overlap}")
    if args.smooth_frames < 1 or args.chunk < 1:
        raise MltemError("--smooth-frames and --chunk must be >= 1")
    signal = io.load(args.movie)
    io.require_kind(signal, "image", path=args.movie)
    io.check_finite(signal, path=args.movie)
    n = io.n_frames(signal)
    shape = tuple(int(v) for v in signal.data.shape[-2:])
    if min(shape) < 16:
        raise MltemError(f"frames are {shape[0]} x {shape[1]} px; segmentation needs at least 16 x 16", path=args.movie)
    px, dt, notes = _calibration(signal, args)
    for note in notes:
        log.warning("mltem segment: %s", note)
    out = io.OutputDir(args.out, force=args.force, inputs=[args.movie], command="segment")
    models = []
    card = m = trained = None
    if not args.classical:
        from mltem.segment import DETECTOR_MODELS, load_segment_model

        m = load_segment_model(args.model or DETECTOR_MODELS[args.detector])
        card = m.card
        models.append({"name": card.name, "file": str(card.path), "sha256": card.sha256})
        trained = trained_detector(card)
        if trained is not None and trained != args.detector:
            notes.append(f"model '{card.name}' was trained on {DETECTOR_NAMES[trained]} movies, but --detector is "
                         f"{args.detector}: its masks may be meaningless (see --detector)")
            log.warning("mltem segment: %s", notes[-1])
    refiner = None
    if card is not None and not args.no_refine:
        refiner = load_sei_refiner(card)
        if refiner is None:
            notes.append(f"no SEI refiner trained for model '{card.name}': SEI thickness measured on the masks only")
            log.warning("mltem segment: %s", notes[-1])
        else:
            models.append({"name": refiner.card.name, "file": str(refiner.card.path), "sha256": refiner.card.sha256})
    with out.timer("segment"):
        res = segment_stream(io.iter_chunks(signal, chunk=args.chunk), n, shape, model=m, classical=args.classical,
                             tile=args.tile, overlap=args.overlap, smooth_frames=args.smooth_frames,
                             sei_prob=refiner is not None, detector=args.detector)
        masks, psei = res if refiner is not None else (res, None)
    with out.timer("measure"):
        rows, drows = measure_movie(masks, pixel_size_nm=px, frame_time_s=dt)
        if refiner is not None:
            parts = [edge_profiles(block, masks[i : i + len(block)], psei[i : i + len(block)])
                     for i, block in io.iter_chunks(signal, chunk=args.chunk)]
            profiles = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
            refine_sei_rows(rows, profiles, refiner, pixel_size_nm=px)
        del psei
    nav_name = "time" if n > 1 else "frame"
    axes = [{"name": nav_name, "scale": dt, "units": "s"}, {"name": "y", "scale": px, "units": "nm"},
            {"name": "x", "scale": px, "units": "nm"}]
    out.save_array("masks.hspy", masks, axes=axes, title="segmentation (0 electrolyte, 1 electrode, 2 SEI, 3 lithium, 4 bubble)",
                   quantity="class")
    out.save_csv("metrics.csv", rows, METRIC_COLUMNS)
    out.save_csv("dendrites.csv", drows, DENDRITE_COLUMNS)
    tracks = dendrite_tracks(drows)
    out.save_csv("tracks.csv", tracks, TRACK_COLUMNS)
    with out.timer("figures"):
        frames, shown = _frames_for_figures(signal, n)
        t = np.arange(n) * dt
        out.save_figure("overlay.png", contact_sheet(frames, masks, time_s=t, pixel_size_nm=px))
        out.save_figure("metrics.png", metrics_figure(rows))
        if not args.no_movie and n <= 200:
            from mltem.io import atomic_write

            p = out.file("overlay.gif")
            with atomic_write(p) as tmp:
                write_overlay_movie(tmp, frames, masks, frame_time_s=dt)
            out.record(p)
    # the masks show the movie's contrast where they come from a labeller of --detector's
    # contrast (a model trained on the other one has its own note above)
    if args.classical or trained == args.detector:
        mismatch = contrast_mismatch(frames, masks, args.detector, among=shown)
        if mismatch is not None:
            notes.append(mismatch)
            log.warning("mltem segment: %s", notes[-1])
    results = _summary(rows, masks, px, dt, tracks)
    p_step = results["sei_edge_step_probability_median"]
    if p_step is not None and 0.2 < p_step < 0.8:
        notes.append(f"the SEI refiner cannot tell whether the electrode edge is a step or a wedge (step probability "
                     f"{p_step:.2f}): the refined SEI thickness mixes both corrections; check its error bound")
        log.warning("mltem segment: %s", notes[-1])
    results["notes"] = notes
    out.write_summary(
        parameters={"model": None if args.classical else card.name, "classical": args.classical,
                    "detector": args.detector, "tile": args.tile,
                    "overlap": args.overlap, "smooth_frames": args.smooth_frames,
                    "sei_refine": refiner is not None, "chunk": args.chunk,
                    "pixel_size_nm": px, "frame_time_s": dt},
        results=results,
        models=models,
    )
    bound = ""
    if results["sei_thickness_err_nm_median"] is not None:
        bound = (f" (90 % error bound: median {results['sei_thickness_err_nm_median']:.3g} nm, at most 10 % of the "
                 f"value on {100 * results['sei_frames_bound_within_10pct']:.0f} % of frames)")
    print(f"{n} frames -> {out.path}/masks.hspy, metrics.csv; SEI {results['sei_thickness_nm_first']} -> "
          f"{results['sei_thickness_nm_last']} nm{bound}; lithium {results['lithium_area_nm2_last']:.4g} nm^2; "
          f"dendrites (max) {results['dendrite_count_max']}")
    return 0


def _frames_for_figures(signal, n):
    """The frames shown in the figures (all of them unless the movie is long: then 200,
    the others left zero) and their indices."""
    import numpy as np

    from mltem.io import iter_chunks
    from mltem.segment._preprocess import evenly_spaced

    shown = evenly_spaced(n, 200)
    if len(shown) == n:
        return np.concatenate([b for _, b in iter_chunks(signal, chunk=64)]), shown
    keep = set(shown.tolist())
    frames = np.zeros((n, *signal.data.shape[-2:]), np.float32)
    for start, block in iter_chunks(signal, chunk=64):
        for i in range(len(block)):
            if start + i in keep:
                frames[start + i] = block[i]
    return frames, shown


def _summary(rows, masks, px, dt, tracks):
    import numpy as np

    def col(k):
        return np.array([r[k] for r in rows], float)

    sei = col("sei_thickness_nm")
    fin = np.isfinite(sei)
    frac = np.bincount(masks.ravel(), minlength=5)[:5] / masks.size
    vel = col("tip_velocity_nm_s")
    err = col("sei_thickness_err_nm")
    bounded = fin & np.isfinite(err)
    step = np.array([r.get("sei_edge_step_probability", np.nan) for r in rows], float)
    step = step[np.isfinite(step)]
    growth = np.array([r["growth_velocity_nm_s"] for r in tracks], float)
    return {
        "n_frames": len(rows),
        "class_fractions": dict(zip(("electrolyte", "electrode", "SEI", "lithium", "bubble"), frac.round(5).tolist())),
        "sei_thickness_nm_first": round(float(sei[fin][0]), 3) if fin.any() else None,
        "sei_thickness_nm_last": round(float(sei[fin][-1]), 3) if fin.any() else None,
        "sei_thickness_err_nm_median": round(float(np.median(err[bounded])), 3) if bounded.any() else None,
        "sei_frames_bound_within_10pct": (round(float(np.mean(err[bounded] <= 0.1 * sei[bounded])), 4)
                                          if bounded.any() else None),
        # the refiner's reading of the electrode edge (1: a step, as a patterned film; 0: a wedge)
        "sei_edge_step_probability_median": round(float(np.median(step)), 3) if step.size else None,
        "lithium_area_nm2_last": float(col("lithium_area_nm2")[-1]),
        "dendrite_count_max": int(col("dendrite_count").max()),
        "longest_dendrite_nm_max": float(col("longest_dendrite_nm").max()),
        "tip_velocity_nm_s_mean": float(np.nanmean(vel)) if np.isfinite(vel).any() else None,
        # per tracked dendrite (tracks.csv): the slope of its length against time
        "dendrite_tracks_with_velocity": int(np.isfinite(growth).sum()),
        "growth_velocity_nm_s_median": float(np.median(growth[np.isfinite(growth)])) if np.isfinite(growth).any() else None,
    }
