"""``mltem holo OBJECT --reference REF --out DIR``: phase, amplitude, potential and charge maps
from off-axis electron holograms (single holograms or in-situ series)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mltem.cli._main import add_output_arguments

log = logging.getLogger(__name__)

CHARGE_UNITS = "e/nm^2"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("object", help="object hologram: an image or a (frame, y, x) series")
    p.add_argument("--reference", metavar="REF", help="vacuum reference hologram (an image; a stack is averaged)")
    add_output_arguments(p)
    p.add_argument("--sideband", nargs=2, type=float, metavar=("KY", "KX"),
                   help="sideband position in Fourier pixels from the zero frequency (signed; default: detected)")
    p.add_argument("--aperture", choices=("hard", "soft", "butterworth"), default="soft", help="aperture shape (default soft)")
    p.add_argument("--aperture-radius", type=float, metavar="PX",
                   help="aperture radius in Fourier pixels (default: chosen from the measured noise)")
    p.add_argument("--beam-energy-kev", type=float, metavar="KEV",
                   help="beam energy (default: from the file's metadata, else 300)")
    p.add_argument("--vacuum", nargs=4, type=int, metavar=("Y0", "Y1", "X0", "X1"),
                   help="vacuum region in pixels (half-open): its phase is set to zero")
    p.add_argument("--ramp", choices=("offset", "plane"), default="plane",
                   help="what to remove in the vacuum region (default plane)")
    p.add_argument("--thickness", metavar="NM",
                   help="specimen thickness in nm, or an image file holding a thickness map in nm; "
                        "adds potential.hspy and charge.hspy")
    p.add_argument("--charge", action="store_true", help="write charge.hspy even without --thickness")
    p.add_argument("--smooth-nm", type=float, metavar="NM",
                   help="Gaussian smoothing (standard deviation, nm) of the Laplacian for the charge map "
                        "(default: half the reconstruction's resolution)")
    p.add_argument("--profile", nargs=5, type=float, metavar=("Y0", "X0", "Y1", "X1", "WIDTH"),
                   help="line profile from (Y0, X0) to (Y1, X1), averaged over WIDTH, all in pixels")
    p.add_argument("--pixel-size-nm", type=float, metavar="NM", help="override the file's pixel size")
    p.add_argument("--unwrap", choices=("exact", "fast"), default="exact",
                   help="phase unwrapping: full-resolution (exact) or coarse-grid (fast)")
    p.add_argument("--no-align", action="store_true", help="series: do not correct specimen drift")


def _image_array(signal, path, *, name):
    import numpy as np

    from mltem import io
    from mltem._errors import MltemError

    io.require_kind(signal, "image", path=path)
    nav = signal.axes_manager.navigation_dimension
    if nav > 1:
        raise MltemError(f"{name} has {nav} navigation dimensions; give one image or a (frame, y, x) series", path=path)
    if np.iscomplexobj(signal.data):
        raise MltemError(f"{name} holds complex data; a hologram is a real intensity image", path=path)
    return nav


def _pixel_size(signal, override):
    if override is not None:
        return float(override)
    ax = signal.axes_manager.signal_axes
    if all(a.units == "nm" for a in ax) and abs(ax[0].scale - ax[1].scale) <= 1e-3 * ax[0].scale:
        return float(ax[0].scale)
    return None


def _thickness(value, shape, path_inputs):
    import numpy as np

    from mltem import io
    from mltem._errors import MltemError

    try:
        t = float(value)
    except ValueError:
        p = Path(value)
        s = io.load(p)
        t = np.asarray(s.data, dtype=np.float64)
        if t.shape != tuple(shape):
            raise MltemError(f"thickness map has shape {t.shape}, the holograms {tuple(shape)}", path=p) from None
        path_inputs.append(p)
        return t, f"map {p.name}"
    if not (np.isfinite(t) and t > 0):
        raise MltemError(f"--thickness must be > 0 nm, got {value}")
    return t, t


def run(args) -> int:
    import numpy as np

    from mltem import holography as H
    from mltem import io
    from mltem._errors import MltemError
    from mltem._progress import progress
    from mltem.holography._plot import plot_maps, plot_profile

    obj_s = io.load(args.object, lazy=True)
    nav = _image_array(obj_s, args.object, name="the object hologram")
    io.check_finite(obj_s, path=args.object)
    data = obj_s.data
    shape = tuple(int(s) for s in data.shape[-2:])
    n_frames = 1 if nav == 0 else int(data.shape[0])
    if n_frames == 0:
        raise MltemError("the series holds no frames", path=args.object)
    inputs = [Path(args.object)]
    ref = None
    if args.reference:
        ref_s = io.load(args.reference)
        rnav = _image_array(ref_s, args.reference, name="the reference hologram")
        io.check_finite(ref_s, path=args.reference)
        ref = np.asarray(ref_s.data, dtype=np.float32)
        if rnav == 1:
            ref = ref.mean(axis=0)
        if ref.shape != shape:
            raise MltemError(f"reference is {ref.shape[0]} x {ref.shape[1]} pixels, the object {shape[0]} x {shape[1]}",
                             path=args.reference)
        inputs.append(Path(args.reference))
    else:
        log.warning("no --reference: lens, detector and biprism distortions stay in the phase")
    px = _pixel_size(obj_s, args.pixel_size_nm)
    if args.pixel_size_nm is not None and not args.pixel_size_nm > 0:
        raise MltemError(f"--pixel-size-nm must be > 0, got {args.pixel_size_nm}")
    energy = args.beam_energy_kev
    if energy is None:
        energy = obj_s.metadata.get_item("Acquisition_instrument.TEM.beam_energy")
        energy = float(energy) if energy else 300.0
    if not energy > 0:
        raise MltemError(f"--beam-energy-kev must be > 0, got {energy}")
    thickness, thickness_desc = (None, None)
    if args.thickness is not None:
        thickness, thickness_desc = _thickness(args.thickness, shape, inputs)
    want_charge = args.charge or thickness is not None
    if want_charge and px is None:
        raise MltemError("the charge map needs the pixel size in nm, but the file has no length calibration; "
                         "pass --pixel-size-nm", path=args.object)
    if args.vacuum is not None:
        y0, y1, x0, x1 = args.vacuum
        if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
            raise MltemError(f"--vacuum {y0} {y1} {x0} {x1} is empty or outside the {shape[0]} x {shape[1]} image")
    if args.profile is not None:
        y0, x0, y1, x1, w = args.profile
        if not (0 <= y0 <= shape[0] - 1 and 0 <= y1 <= shape[0] - 1 and 0 <= x0 <= shape[1] - 1 and 0 <= x1 <= shape[1] - 1):
            raise MltemError(f"--profile ends lie outside the {shape[0]} x {shape[1]} image")
        if w < 1 or np.hypot(y1 - y0, x1 - x0) < 1:
            raise MltemError("--profile needs a line of at least 1 pixel and WIDTH >= 1")
    if args.aperture_radius is not None and not args.aperture_radius > 0:
        raise MltemError(f"--aperture-radius must be > 0 Fourier pixels, got {args.aperture_radius}")
    if args.smooth_nm is not None and args.smooth_nm < 0:
        raise MltemError(f"--smooth-nm must be >= 0, got {args.smooth_nm}")

    od = io.OutputDir(args.out, force=args.force, inputs=inputs, command="holo")

    def frame(i):
        a = data if nav == 0 else data[i]
        a = a.compute() if hasattr(a, "compute") else a
        return np.asarray(a, dtype=np.float32)

    out_shape = shape if nav == 0 else (n_frames, *shape)
    names = ["phase", "amplitude"] + (["potential"] if thickness is not None else []) + (["charge"] if want_charge else [])
    import tempfile

    tmpdir = tempfile.TemporaryDirectory(dir=od.path, prefix=".holo_tmp.")
    try:
        if nav == 0:
            arrays = {k: np.zeros(out_shape, np.float32) for k in names}
        else:  # disk-backed, so memory stays flat however long the series
            arrays = {k: np.lib.format.open_memmap(Path(tmpdir.name) / f"{k}.npy", mode="w+", dtype=np.float32,
                                                   shape=out_shape) for k in names}
        vac = tuple(args.vacuum) if args.vacuum is not None else None
        ramp = 1 if args.ramp == "plane" else 0
        gen = H.reconstruct_series(
            (frame(i) for i in range(n_frames)), ref, sideband=args.sideband, aperture=args.aperture,
            aperture_radius=args.aperture_radius, vacuum=vac, ramp=ramp, align=not args.no_align, unwrap=args.unwrap)
        drifts, offsets, prof_rows, prof_cols = [], [], [], None
        first = None
        smooth_nm = args.smooth_nm
        try:
            with od.timer("reconstruct"):
                for i, r in enumerate(progress(gen, total=n_frames, desc="holo", unit="frame")):
                    if first is None:
                        first = r
                        if smooth_nm is None and px is not None:
                            smooth_nm = 0.5 * min(shape) * px / r.aperture_radius
                    sl = () if nav == 0 else (i,)
                    arrays["phase"][sl] = r.phase
                    arrays["amplitude"][sl] = r.amplitude
                    if thickness is not None:
                        arrays["potential"][sl] = H.projected_potential(r.phase, thickness, beam_energy_kev=energy)
                    if want_charge:
                        arrays["charge"][sl] = H.projected_charge_density(
                            r.phase, pixel_size_nm=px, beam_energy_kev=energy, smooth_nm=smooth_nm)
                    drifts.append([round(r.shift_px[0], 3), round(r.shift_px[1], 3)])
                    offsets.append(None if r.ramp is None else [float(c) for c in r.ramp])
                    if args.profile is not None:
                        y0, x0, y1, x1, w = args.profile
                        cols = {}
                        for k, col in (("phase", "phase_rad"), ("potential", "potential_v"), ("charge", "charge_e_per_nm2")):
                            if k in arrays:
                                dist, vals = H.line_profile(arrays[k][sl], (y0, x0), (y1, x1), width=w,
                                                            pixel_size_nm=px or 1.0)
                                cols[col] = vals
                        prof_cols = ["frame", "distance_nm" if px else "distance_px", *cols]
                        for j in range(len(dist)):
                            prof_rows.append([i, dist[j], *(cols[c][j] for c in cols)])
        except ValueError as exc:  # bad options reach the library as ValueError
            raise MltemError(str(exc), path=args.object) from None

        axes_img = [{"name": "y", "scale": px or 1.0, "units": "nm" if px else ""},
                    {"name": "x", "scale": px or 1.0, "units": "nm" if px else ""}]
        if nav:
            t_ax = obj_s.axes_manager.navigation_axes[0]
            axes_img = [{"name": t_ax.name if isinstance(t_ax.name, str) else "frame", "scale": t_ax.scale,
                         "offset": t_ax.offset, "units": t_ax.units if isinstance(t_ax.units, str) else ""}] + axes_img
        quantities = {"phase": "Phase (rad)", "amplitude": "Amplitude (relative to reference)",
                      "potential": "Mean electrostatic potential along the beam (V)",
                      "charge": f"Projected charge density ({CHARGE_UNITS})"}
        with od.timer("write"):
            for k in names:
                od.save_array(f"{k}.hspy", arrays[k], axes=axes_img, quantity=quantities[k])
            first_maps = [(np.asarray(arrays["phase"][() if nav == 0 else (0,)]), "phase (rad)", "viridis")]
            if thickness is not None:
                first_maps.append((np.asarray(arrays["potential"][() if nav == 0 else (0,)]), "potential (V)", "magma"))
            if want_charge:
                first_maps.append((np.asarray(arrays["charge"][() if nav == 0 else (0,)]),
                                   f"projected charge ({CHARGE_UNITS})", "RdBu_r"))
            title = Path(args.object).name + (f" (frame 0 of {n_frames})" if nav else "")
            od.save_figure("phase.png", plot_maps(first_maps, pixel_size_nm=px, title=title,
                                                 profile=args.profile))
            if args.profile is not None:
                od.save_csv("profile.csv", prof_rows, prof_cols)
                pr = np.asarray(prof_rows, dtype=float)
                labels = {"phase_rad": "phase (rad)", "potential_v": "potential (V)",
                          "charge_e_per_nm2": f"charge ({CHARGE_UNITS})"}
                npts = int((pr[:, 0] == 0).sum())
                columns = [(pr[:, 2 + j].reshape(n_frames, npts), labels[c]) for j, c in enumerate(prof_cols[2:])]
                od.save_figure("profile.png", plot_profile(pr[:npts, 1], columns, title=Path(args.object).name))
    finally:
        arrays = None
        tmpdir.cleanup()

    est = first.extra.get("aperture_estimate")
    sb = first.extra.get("sideband")
    k_ap = first.aperture_radius / (min(shape) * px) if px else None
    ph0 = first.phase
    results = {
        "frames": n_frames,
        "sideband_ky_kx_px": [round(first.sideband[0], 3), round(first.sideband[1], 3)],
        "sideband_detected": args.sideband is None,
        "sideband_score": None if sb is None else sb.score,
        "fringe_spacing_px": round(float(min(shape) / np.hypot(*first.sideband)), 4),
        "aperture": args.aperture,
        "aperture_radius_px": round(first.aperture_radius, 3),
        "aperture_radius_per_nm": None if k_ap is None else round(k_ap, 6),
        "aperture_limited_by": "user" if est is None else est.limited_by,
        "resolution_nm": None if k_ap is None else round(1 / k_ap, 4),
        "interaction_constant_rad_per_v_m": H.interaction_constant(energy),
        "phase_rad_frame0": {"min": float(ph0.min()), "max": float(ph0.max()), "mean": float(ph0.mean())},
        "drift_px": drifts,
        "phase_offset_removed_rad": offsets,
        "units": {"phase": "rad", "amplitude": "1 (relative to the reference)", "potential": "V",
                  "charge": CHARGE_UNITS, "distance": "nm" if px else "px"},
    }
    od.write_summary(
        parameters={"reference": args.reference, "sideband": args.sideband, "aperture": args.aperture,
                    "aperture_radius": args.aperture_radius, "beam_energy_kev": energy, "vacuum": args.vacuum,
                    "ramp": args.ramp, "thickness_nm": thickness_desc, "smooth_nm": smooth_nm,
                    "charge_smoothing": "Gaussian, standard deviation smooth_nm" if want_charge else None,
                    "profile": args.profile, "pixel_size_nm": px, "unwrap": args.unwrap, "align": not args.no_align},
        results=results,
    )
    log.info("holo: %d frame(s), sideband (%.2f, %.2f) px, aperture %s r = %.1f px -> %s", n_frames,
             *first.sideband, args.aperture, first.aperture_radius, od.path)
    return 0
