"""``mltem fronts MOVIE --out DIR``: reaction-front position in every frame and its kinetics."""
from __future__ import annotations

from mltem.cli._main import add_output_arguments


def add_arguments(p) -> None:
    p.add_argument("movie", help="in-situ movie (frame, y, x): hspy, dm4, emd, tif, mp4, ...")
    add_output_arguments(p)
    p.add_argument("--method", choices=("classical", "network"), default="classical",
                   help="classical kymograph tracker (default) or the U-Net segmentation (ONNX)")
    p.add_argument("--geometry", choices=("auto", "wire", "core-shell", "planar"), default="auto",
                   help="what reacts: a nanowire, a particle reacting from its surface, or a planar boundary")
    p.add_argument("--mode", choices=("auto", "contrast", "lattice"), default="auto",
                   help="classical tracker: intensity contrast, or GPA strain for lattice images")
    p.add_argument("--axis", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"),
                   help="measure along this line (px; X0 Y0 is the contact point / origin) instead of detecting it")
    p.add_argument("--half-width", type=float, default=None, metavar="PX",
                   help="with --axis: half-width of the band averaged across it (px, default 3)")
    p.add_argument("--t0", default="first", metavar="T0",
                   help="reaction start for the fit: 'first' (first frame, default), 'fit', or a time in s")
    p.add_argument("--x0", default="fit", metavar="NM",
                   help="front position at t0 for the fit: 'fit' (default) or a value in nm (e.g. 0 when the front "
                        "enters from the axis origin at t0 but is not measurable there, as near a lattice image's edge)")
    p.add_argument("--pixel-size", type=float, metavar="NM", help="override the file's pixel size (nm/px)")
    p.add_argument("--frame-time", type=float, metavar="S", help="override the file's frame time (s)")
    p.add_argument("--model", default="fronts-unet", help="model for --method network (name or card path)")
    p.add_argument("--network-scale", type=int, default=1, choices=(1, 2), metavar="{1,2}",
                   help="--method network: 1 runs the network at full resolution (default); 2 on frames binned "
                        "2 x 2 (about 4x faster network, the front then refined from the full-resolution intensity)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the fit's intervals (0: off)")


def _calibration(signal, args, path):
    import logging

    from mltem._errors import MltemError

    log = logging.getLogger("mltem.fronts")
    sig = signal.axes_manager.signal_axes
    nav = signal.axes_manager.navigation_axes
    px = args.pixel_size
    if px is None:
        units = sig[0].units if isinstance(sig[0].units, str) else ""
        if units == "nm" and sig[0].scale > 0:
            px = float(sig[0].scale)
        else:
            px = 1.0
            log.warning("%s: no spatial calibration in nm; positions are in px (pass --pixel-size)", path)
    dt = args.frame_time
    if dt is None:
        if nav and isinstance(nav[0].units, str) and nav[0].units == "s" and nav[0].scale > 0:
            dt = float(nav[0].scale)
        else:
            dt = 1.0
            log.warning("%s: no frame time in s; times are frame numbers (pass --frame-time)", path)
    if not (px > 0 and dt > 0):
        raise MltemError("--pixel-size and --frame-time must be > 0")
    return px, dt


def run(args) -> int:
    import numpy as np

    from mltem import io
    from mltem._errors import MltemError
    from mltem.fronts import (
        axis_from_points,
        fit_growth_law,
        plot_kymograph,
        track_fronts,
        track_fronts_network,
    )

    s = io.load(args.movie)
    io.require_kind(s, "image", path=args.movie)
    if len(s.axes_manager.navigation_axes) != 1:
        raise MltemError(f"holds {s.axes_manager.navigation_dimension} navigation axes; a movie needs exactly "
                         "one (time): (frame, y, x)", path=args.movie)
    io.check_finite(s, path=args.movie)
    frames = np.asarray(s.data, dtype=np.float32)
    if len(frames) < 2:
        raise MltemError("holds a single frame; front tracking needs a movie", path=args.movie)
    px, dt = _calibration(s, args, args.movie)
    if args.t0 in ("first", "fit"):
        t0 = args.t0
    else:
        try:
            t0 = float(args.t0)
        except ValueError:
            raise MltemError(f"--t0 must be 'first', 'fit' or a time in s, got {args.t0!r}") from None
    if args.x0 == "fit":
        x0 = "fit"
    else:
        try:
            x0 = float(args.x0)
        except ValueError:
            raise MltemError(f"--x0 must be 'fit' or a position in nm, got {args.x0!r}") from None
    axis = None
    if args.axis is not None:
        x0, y0, x1, y1 = args.axis
        H, W = frames.shape[1:]
        for x, y in ((x0, y0), (x1, y1)):
            if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
                raise MltemError(f"--axis point ({x:g}, {y:g}) lies outside the {W} x {H} px frame")
        if np.hypot(x1 - x0, y1 - y0) < 4:
            raise MltemError("--axis is shorter than 4 px")
        hw = args.half_width or 3.0
        if hw <= 0:
            raise MltemError("--half-width must be > 0")
        axis = axis_from_points(x0, y0, x1, y1, half_width_px=hw,
                                geometry="planar" if args.geometry == "planar" else "wire")
    elif args.half_width is not None:
        raise MltemError("--half-width goes with --axis")
    out = io.OutputDir(args.out, force=args.force, inputs=[args.movie], command="fronts")
    models = []
    with out.timer("track"):
        if args.method == "network":
            tr = track_fronts_network(frames, pixel_size_nm=px, frame_time_s=dt, geometry=args.geometry,
                                      axis=axis, model=args.model, network_scale=args.network_scale)
            from mltem.registry import find_model

            card = find_model(args.model, task="fronts")
            models.append({"name": card.name, "file": card.file, "sha256": card.sha256})
        else:
            tr = track_fronts(frames, pixel_size_nm=px, frame_time_s=dt, geometry=args.geometry, axis=axis,
                              mode=args.mode)
    if t0 == "first":
        # the movie's first frame, even where no front was measurable in it (lattice mode
        # near the field's edge): fit_growth_law's "first" would take the first measured one
        t0 = float(tr.time_s[0])
    with out.timer("kinetics"):
        fit = fit_growth_law(tr.time_s, tr.measured_nm, t0=t0, x0=x0, bootstrap=args.bootstrap)
    n = len(frames)
    rows = [
        {"frame": i, "time_s": float(tr.time_s[i]), "front_position_nm": float(tr.position_nm[i]),
         "front_position_std_nm": float(tr.position_std_nm[i]), "measured_position_nm": float(tr.measured_nm[i]),
         "velocity_nm_s": float(tr.velocity_nm_s[i]), "velocity_std_nm_s": float(tr.velocity_std_nm_s[i])}
        for i in range(n)
    ]
    cols = ["frame", "time_s", "front_position_nm", "front_position_std_nm", "measured_position_nm",
            "velocity_nm_s", "velocity_std_nm_s"]
    out.save_csv("fronts.csv", rows, cols)
    kin = fit.to_dict()
    kin.update({
        "model": "x = x0 + k (t - t0)^n", "units": {"x0": "nm", "k": "nm / s^n", "t0_s": "s"},
        "positions": "measured (unsmoothed) front positions, nm",
        "diffusion_vs_reaction": "n ~ 0.5: diffusion-controlled; n ~ 1: reaction(interface)-controlled",
    })
    out.save_json("kinetics.json", kin)
    with out.timer("figure"):
        out.save_figure("kymograph.png", plot_kymograph(tr, fit, title=f"{args.movie.split('/')[-1]}: {tr.axis.geometry}, {tr.method}"))
    out.save_array("kymograph.hspy", tr.kymograph,
                   axes=[{"name": "time", "scale": float(dt), "units": "s"},
                         {"name": "position", "scale": float(px), "units": "nm"}], signal_dims=1,
                   quantity={"contrast": "intensity", "lattice": "dilatation", "swelling": "width gained since frame 0 (px)"}.get(tr.mode.removesuffix("+contrast"), "reacted fraction"))
    out.write_summary(
        parameters={"method": args.method, "geometry": args.geometry, "mode": args.mode, "axis_px": args.axis,
                    "pixel_size_nm": px, "frame_time_s": dt, "t0": args.t0, "x0": args.x0, "bootstrap": args.bootstrap,
                    **({"network_scale": args.network_scale} if args.method == "network" else {})},
        results={
            "n_frames": n, "geometry": tr.axis.geometry, "mode": tr.mode,
            "axis_start_xy_px": tr.axis.points[0].tolist(), "axis_end_xy_px": tr.axis.points[-1].tolist(),
            "exponent": fit.n, "rate": fit.k, "verdict": fit.verdict,
            "final_position_nm": float(tr.position_nm[np.nonzero(np.isfinite(tr.position_nm))[0][-1]]),
            "frames_measured": int(np.isfinite(tr.measured_px).sum()),
            "measurement_std_nm": tr.kalman.measurement_std,
            "frames_per_s": n / max(sum(tr.timings_s.values()), 1e-9),
            "timings_s": tr.timings_s, "warning": kin["warning"],
        },
        models=models,
    )
    first, last = np.nonzero(np.isfinite(tr.position_nm))[0][[0, -1]]
    print(f"front: {tr.position_nm[first]:.1f} -> {tr.position_nm[last]:.1f} nm over {tr.time_s[-1] - tr.time_s[0]:.3g} s; "
          f"n = {fit.n:.3f} ({fit.verdict}); wrote {out.path}")
    return 0
