"""``mltem index PATTERNS... --phase CIF_OR_NAME [--phase ...] --out DIR``: phase, zone axis and
in-plane angle of SAED / nanobeam diffraction patterns.

Two methods: ``network`` (an ONNX classifier proposes the top-k (phase, zone) templates,
template matching refines orientation and calibration among them) and ``classical``
(template matching over every template). The default is the network when a model in
``models/`` was trained on every requested phase, else classical.

Several patterns are one acquisition series sharing the camera length (``--calibration
shared``, the default): a first pass indexes a sample of them, the confidently indexed ones
give the series' calibration factor (median), and every pattern is then matched with the
calibration held within ``--calibration-window`` of it. ``--calibration per-pattern``
searches each pattern's calibration within ``--scale-range`` instead."""
from __future__ import annotations

import logging
import math

from mltem.cli._main import add_output_arguments

log = logging.getLogger(__name__)

COLUMNS = ["file", "frame", "phase", "zone_u", "zone_v", "zone_w", "inplane_deg", "score", "reliability",
           "ref_hkl", "calibration_scale", "pixel_size_inv_nm", "calibration_mode", "centre_y", "centre_x", "runner_up",
           "network_confidence"]


def add_arguments(p) -> None:
    p.add_argument("patterns", nargs="+", help="pattern files (single pattern, stack or 4D-STEM) or folders of them")
    p.add_argument("--phase", action="append", required=True, metavar="CIF_OR_NAME",
                   help="candidate phase: a CIF file or a built-in name (Si, graphite, Li2O, LiF, Li, Cu, LiCoO2, "
                        "LiFePO4, Li4Ti5O12, NMC111); repeat for several phases")
    add_output_arguments(p)
    p.add_argument("--pixel-size", type=float, metavar="INV_NM",
                   help="calibration in 1/nm per pixel (overrides the file's; needed if the file has none)")
    p.add_argument("--camera-length-mm", type=float, help="camera length, with --detector-pixel-um, instead of --pixel-size")
    p.add_argument("--detector-pixel-um", type=float, help="detector pixel pitch in micrometres (after binning)")
    p.add_argument("--energy-kev", type=float, default=200.0, help="beam energy in keV (default 200)")
    p.add_argument("--scale-range", type=float, default=0.035,
                   help="calibration error absorbed by the matching, as a fraction (default 0.035 = 3.5 %%)")
    p.add_argument("--max-zones", type=int, default=8, help="zone axes per phase in the template bank (default 8)")
    p.add_argument("--min-score", type=float, default=0.15, help="patterns scoring below this are flagged 'none'")
    p.add_argument("--max-overlays", type=int, default=50, help="write at most this many overlay PNGs (default 50)")
    p.add_argument("--method", choices=("network", "classical"),
                   help="network: a trained model proposes the top-k templates and template matching refines them; "
                        "classical: match every template. Default: network if a model knows all the phases, else classical")
    p.add_argument("--model", metavar="NAME", help="index model (registry name or .onnx/.json path; default: the "
                                                   "smallest model in models/ trained on all the phases)")
    p.add_argument("--top-k", type=int, default=5, help="templates the network proposes for refinement (default 5)")
    p.add_argument("--calibration", choices=("shared", "per-pattern"), default="shared",
                   help="shared (default): all patterns share the camera length; its factor is refined on the "
                        "confidently indexed patterns and every pattern is matched within --calibration-window of it. "
                        "per-pattern: each pattern's calibration is searched within --scale-range")
    p.add_argument("--calibration-window", type=float, default=0.005,
                   help="half-width of the shared calibration window, as a fraction (default 0.005 = 0.5 %%)")
    p.add_argument("--calibration-phase", metavar="NAME",
                   help="a known standard in the series (one of the --phase names): only patterns indexed as it "
                        "set the shared calibration")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes, each preparing, proposing and matching its share of the patterns "
                        "(default: the CPU cores available; answers do not depend on it)")
    p.add_argument("--calibration-sample", type=int, default=500,
                   help="patterns (evenly spaced) indexed in the first pass of the shared calibration (default 500)")


def run(args) -> int:
    from mltem._errors import MltemError
    from mltem._progress import progress
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from mltem.diffraction import (IndexPool, IndexSettings, build_templates, default_jobs, index_with_shared,
                                   load_phase, pixel_size_from_camera, shared_calibration)
    from mltem.diffraction._network import NetworkIndexer, model_for_phases
    from mltem.diffraction._patterns import open_patterns
    from mltem.diffraction._plot import overlay_figure, summary_figure
    from mltem.io import OutputDir

    if not 0 < args.scale_range < 0.2:
        raise MltemError(f"--scale-range must lie between 0 and 0.2, got {args.scale_range}")
    if args.max_zones < 1:
        raise MltemError(f"--max-zones must be >= 1, got {args.max_zones}")
    if args.top_k < 1:
        raise MltemError(f"--top-k must be >= 1, got {args.top_k}")
    if not 0 < args.calibration_window < 0.2:
        raise MltemError(f"--calibration-window must lie between 0 and 0.2, got {args.calibration_window}")
    if args.jobs is not None and args.jobs < 1:
        raise MltemError(f"--jobs must be >= 1, got {args.jobs}")
    if args.calibration_sample < 1:
        raise MltemError(f"--calibration-sample must be >= 1, got {args.calibration_sample}")
    if args.calibration_phase is not None and args.calibration == "per-pattern":
        raise MltemError("--calibration-phase needs --calibration shared")
    if args.model is not None and args.method == "classical":
        raise MltemError("--model needs --method network (or no --method)")
    px_cli = args.pixel_size
    if px_cli is not None and not px_cli > 0:
        raise MltemError(f"--pixel-size must be positive, got {px_cli}")
    if (args.camera_length_mm is None) != (args.detector_pixel_um is None):
        raise MltemError("--camera-length-mm and --detector-pixel-um go together")
    if args.camera_length_mm is not None:
        if px_cli is not None:
            raise MltemError("give either --pixel-size or --camera-length-mm/--detector-pixel-um, not both")
        if not (args.camera_length_mm > 0 and args.detector_pixel_um > 0):
            raise MltemError("--camera-length-mm and --detector-pixel-um must be positive")
        px_cli = pixel_size_from_camera(camera_length_mm=args.camera_length_mm, detector_pixel_um=args.detector_pixel_um,
                                        energy_ev=args.energy_kev * 1e3)
    phases = [load_phase(p) for p in args.phase]
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise MltemError(f"the same phase was given twice ({', '.join(names)})")
    if args.calibration_phase is not None and args.calibration_phase not in names:
        raise MltemError(f"--calibration-phase {args.calibration_phase} is not one of the phases ({', '.join(names)})")
    method, card, note = args.method or "auto", None, "classical template matching requested"
    if method != "classical":
        card, note = model_for_phases(phases, name=args.model)
        if card is None:
            if method == "network":
                raise MltemError(f"--method network: {note}; train one with `mltem train index --config "
                                 "train/configs/index.yaml --phase CIF ...` or use --method classical")
            note += "; used classical template matching"
            method = "classical"
        else:
            method = "network"
            note = f"{note} proposes the top {args.top_k} templates; template matching refines them"
    sources = open_patterns(args.patterns)
    for s in sources:
        if s.pixel_size_inv_nm is None and px_cli is None:
            raise MltemError("has no calibration in 1/nm; give --pixel-size (1/nm per pixel) or the camera length",
                             path=s.path)
    out = OutputDir(args.out, force=args.force, inputs=[s.path for s in sources], command="index")
    settings = IndexSettings(energy_ev=args.energy_kev * 1e3, scale_range=args.scale_range, max_zones=args.max_zones,
                             min_score=args.min_score)
    with out.timer("templates"):
        bank = build_templates(phases, settings)
        indexer = NetworkIndexer(card, bank, top_k=args.top_k) if method == "network" else None
    frames = [(s, i) for s in sources for i in range(s.n_frames)]
    total = len(frames)

    def px_of(src):
        return px_cli if px_cli is not None else src.pixel_size_inv_nm

    jobs = default_jobs() if args.jobs is None else args.jobs
    pool = IndexPool(bank, indexer=indexer, jobs=jobs)
    threads = ThreadPoolExecutor(jobs) if jobs > 1 else None
    mapper = threads.map if threads is not None else map
    batch = 64

    def read(chunks):
        for ks in chunks:
            yield [frames[k][0].frame(frames[k][1]) for k in ks], [px_of(frames[k][0]) for k in ks]

    try:
        shared, kept = None, {}
        cal_mode = args.calibration if total > 1 else "per-pattern"
        if cal_mode == "shared":
            sample = [int(k) for k in np.unique(np.linspace(0, total - 1, min(total, args.calibration_sample)).round())]
            with out.timer("calibration"):
                bar = progress(total=len(sample), desc="calibrate", unit="pattern")
                chunks = [sample[b:b + batch] for b in range(0, len(sample), batch)]
                for ks, answers in zip(chunks, pool.index_batches(read(chunks), keep=True)):
                    kept.update(zip(ks, answers))
                    bar.update(len(ks))
                bar.close()
                shared = shared_calibration([kept[k].first[0] for k in sample], reference_phase=args.calibration_phase,
                                            window=args.calibration_window)
            if shared.scale is None:
                log.warning("shared calibration not possible: %s", shared.note)

        def again(k):
            # a calibration-sample pattern matched again within the shared window
            a = kept.pop(k)
            if shared is None:
                return a.result, a.confidence, a.mode
            return index_with_shared(a.prep, bank, shared, indexer=indexer, first=a.first, proposals=a.proposals)

        rows, n_overlays = [], 0
        bar = progress(total=total, desc="index", unit="pattern")
        with out.timer("index"):
            chunks = [list(range(b, min(total, b + batch))) for b in range(0, total, batch)]
            needs = [[k for k in ks if k not in kept] for ks in chunks]
            for ks, need, answers in zip(chunks, needs, pool.index_batches(read(needs), shared=shared)):
                done = {k: (a.result, a.confidence, a.mode) for k, a in zip(need, answers)}
                old = [k for k in ks if k not in done]
                done.update(zip(old, mapper(again, old)))
                for k in ks:
                    res, conf, mode = done[k]
                    s, i = frames[k]
                    px = px_of(s)
                    rows.append({
                        "file": s.path.name, "frame": i, "phase": res.phase, "zone_u": res.zone[0],
                        "zone_v": res.zone[1], "zone_w": res.zone[2],
                        "inplane_deg": round(res.inplane_deg, 3) if res.phase != "none" else float("nan"),
                        "score": res.score, "reliability": res.reliability,
                        "ref_hkl": " ".join(str(v) for v in res.ref_hkl) if res.phase != "none" else "",
                        "calibration_scale": res.scale, "pixel_size_inv_nm": px * res.scale, "calibration_mode": mode,
                        "centre_y": res.centre_yx[0], "centre_x": res.centre_yx[1],
                        "runner_up": res.second, "network_confidence": conf,
                    })
                    if n_overlays < args.max_overlays:
                        ph = next((p for p in phases if p.name == res.phase), None)
                        fig = overlay_figure(s.frame(i), res, ph, pixel_size_inv_nm=px,
                                             title=f"{s.path.name} frame {i}", energy_ev=settings.energy_ev)
                        out.save_figure(f"overlay_{s.path.stem}_{i:04d}.png", fig)
                        n_overlays += 1
                    bar.update(1)
        bar.close()
    finally:
        pool.close()
        if threads is not None:
            threads.shutdown()
    out.save_csv("index.csv", rows, COLUMNS)
    out.save_figure("summary.png", summary_figure(rows))
    matched = [r for r in rows if r["phase"] != "none"]
    results = {
        "n_patterns": len(rows),
        "n_indexed": len(matched),
        "n_unmatched": len(rows) - len(matched),
        "phases": {n: sum(r["phase"] == n for r in rows) for n in names},
        "mean_reliability": float(sum(r["reliability"] for r in matched) / len(matched)) if matched else None,
        "n_templates": len(bank),
        "patterns_per_s": len(rows) / max(out.timings.get("index", 0.0) + out.timings.get("calibration", 0.0), 1e-9),
        "method": "network+refinement" if method == "network" else "classical",
        "method_note": note,
        "calibration": _calibration_summary(cal_mode, shared, sources, px_cli, rows),
    }
    params = {"phases": [{"name": p.name, "source": p.source, "space_group": p.space_group} for p in phases],
              "pixel_size_inv_nm": px_cli, "energy_ev": settings.energy_ev, "scale_range": settings.scale_range,
              "max_zones": settings.max_zones, "min_score": settings.min_score,
              "method": "network proposals + template refinement" if method == "network" else "classical template matching",
              "top_k": args.top_k if method == "network" else None, "templates": bank.labels,
              "calibration": cal_mode, "calibration_window": args.calibration_window if cal_mode == "shared" else None,
              "calibration_phase": args.calibration_phase, "calibration_sample": args.calibration_sample,
              "jobs": jobs}
    models = [{"name": card.name, "file": str(card.path), "sha256": card.sha256}] if card is not None else []
    out.write_summary(parameters=params, results=results, models=models)
    cal = results["calibration"]
    if cal.get("scale") is not None:
        print(f"shared calibration: x{cal['scale']:.4f} ({cal['percent_change']:+.2f} % vs the file, spread "
              f"{cal['spread_percent']:.2f} %, {cal['n_used']} patterns)")
    print(f"indexed {len(matched)} of {len(rows)} patterns ({len(rows) - len(matched)} unmatched; "
          f"{results['method']}: {note}) -> {out.path / 'index.csv'}")
    return 0


def _calibration_summary(mode, shared, sources, px_cli, rows) -> dict:
    """The calibration the answers used: the shared factor (with its spread) and the refined 1/nm per pixel."""
    files = sorted({px_cli if px_cli is not None else s.pixel_size_inv_nm for s in sources})
    d = {"mode": mode, "pixel_size_file_inv_nm": files[0] if len(files) == 1 else files}
    if shared is not None:
        d.update(shared.as_dict())
        if shared.scale is not None:
            ref = [p * shared.scale for p in files]
            d["pixel_size_refined_inv_nm"] = ref[0] if len(ref) == 1 else ref
            d["pixel_size_refined_spread_inv_nm"] = [p * shared.spread for p in ref] if len(ref) > 1 else ref[0] * shared.spread
    d["n_patterns_shared"] = sum(r["calibration_mode"] == "shared" for r in rows)
    per = [r["calibration_scale"] for r in rows if r["phase"] != "none"]
    if per:
        per.sort()
        d["pattern_scale_median"] = per[len(per) // 2]
        d["pattern_scale_percent_change_median"] = 100.0 * (per[len(per) // 2] - 1)
    d["note"] = d.get("note") or ("one pattern: calibration refined on it alone" if len(rows) == 1 and mode == "per-pattern"
                                   else "calibration refined pattern by pattern (--calibration per-pattern)")
    if isinstance(d.get("spread"), float) and math.isnan(d["spread"]):
        d["spread"] = d["error"] = d["spread_percent"] = d["error_percent"] = None
    return d
