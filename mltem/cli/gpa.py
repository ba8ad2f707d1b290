"""``mltem gpa IMAGE --out DIR``: strain maps by geometric phase analysis.

Writes ``strain.hspy`` ((4, y, x) for an image, (frame, 4, y, x) for a stack: exx, eyy,
exy, rotation in rad; calibrated axes in nm), ``strain.png`` and ``summary.json``
(g vectors in 1/nm, mask size, reference, timings, interior statistics, drift).
Stacks are processed frame by frame with one reference and written as they go.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from pathlib import Path

from mltem.cli._main import add_output_arguments

log = logging.getLogger(__name__)

COMPONENTS = ["exx", "eyy", "exy", "rotation (rad)"]


def add_arguments(p) -> None:
    p.add_argument("image", help="HRTEM/HAADF image or image stack (dm3, dm4, emd, tif, hspy, mrc, ...)")
    add_output_arguments(p)
    p.add_argument(
        "--spots", nargs=4, type=float, metavar=("GY1", "GX1", "GY2", "GX2"),
        help="two non-collinear reflections as (g_y, g_x) pairs in 1/nm (1/px if the image is uncalibrated); "
        "default: the two strongest spots, found automatically",
    )
    p.add_argument("--mask", choices=["gaussian", "cosine"], default="gaussian", help="mask profile (default gaussian)")
    p.add_argument(
        "--mask-size", type=float, metavar="K",
        help="Gaussian sigma or cosine radius in 1/nm (default: 0.1 (gaussian) or 0.25 (cosine) times the "
        "distance between neighbouring spots)",
    )
    p.add_argument(
        "--reference", nargs=4, type=float, metavar=("Y0", "Y1", "X0", "X1"),
        help="region of unstrained lattice (rows Y0..Y1, columns X0..X1; units from --reference-units); "
        "default: --reference-mode",
    )
    p.add_argument("--reference-units", choices=["px", "nm"], default="px", help="units of --reference (default px)")
    p.add_argument(
        "--reference-mode", choices=["auto", "mean", "none"], default="auto",
        help="without --reference: 'auto' = median lattice of the interior (default), 'mean' = mean over the "
        "interior, 'none' = the spots as given or found",
    )
    p.add_argument(
        "--angle-deg", type=float, default=0.0,
        help="express strain in axes whose x axis points this many degrees from the image x axis towards y "
        "(e.g. a crystal direction); default 0 = image axes",
    )
    p.add_argument(
        "--definition", choices=["lattice", "linear"], default="lattice",
        help="'lattice' = local lattice vs reference, exact at large strain (default); 'linear' = small-strain du/dx",
    )
    p.add_argument("--reference-frame", type=int, default=0, help="stacks: frame that fixes the reference (default 0)")
    p.add_argument("--no-register", action="store_true", help="stacks: do not correct drift between frames")
    p.add_argument("--lazy", action="store_true", help="open the file lazily (default: files over 2 GiB)")


def _calibration(signal, path):
    from mltem._errors import MltemError

    ax_x, ax_y = signal.axes_manager.signal_axes
    units = {ax_x.units, ax_y.units}
    if units == {"nm"}:
        sx, sy = float(ax_x.scale), float(ax_y.scale)
        if not (sx > 0 and sy > 0):
            raise MltemError(f"pixel size must be positive, got x {sx} nm, y {sy} nm", path=path)
        if abs(sx - sy) > 1e-3 * max(sx, sy):
            raise MltemError(
                f"non-square pixels (x {sx:.6g} nm, y {sy:.6g} nm): resample the image to square pixels first",
                path=path,
            )
        return sx, "nm", (float(ax_y.offset), float(ax_x.offset))
    log.warning("%s: the image has no length calibration (units %s); working in pixels", path, sorted(map(str, units)))
    return 1.0, "px", (0.0, 0.0)


def run(args) -> int:
    from mltem import io
    from mltem._errors import MltemError
    from mltem.gpa import find_dislocations, make_plan, shortest_lattice_distance
    from mltem.gpa._core import GPAResult
    from mltem.gpa._plot import plot_strain
    from mltem.gpa._stack import lazy_gpa

    import time

    t0 = time.perf_counter()
    s = io.load(args.image, lazy=True if args.lazy else None)
    io.require_kind(s, "image", path=args.image)
    pixel, units, offsets = _calibration(s, args.image)
    lazy = bool(getattr(s, "_lazy", False))
    data = s.data
    nav = s.axes_manager.navigation_shape[::-1]  # numpy order
    m, n = data.shape[-2:]
    nframes = int(np.prod(nav)) if nav else 0
    if nav and len(nav) > 1:
        log.info("%s: navigation shape %s is processed as %d frames", args.image, nav, nframes)
        data = data.reshape(nframes, m, n)
    if not lazy:
        io.check_finite(s, path=args.image)
        data = np.asarray(data)
        if data.dtype.kind not in "biuf":
            raise MltemError(f"holds {data.dtype} data; GPA needs real intensities", path=args.image)
    ref_index = 0
    if nframes:
        ref_index = args.reference_frame
        if not 0 <= ref_index < nframes:
            raise MltemError(f"--reference-frame {ref_index} is out of range: the stack has {nframes} frames")
    ref_img = np.asarray(data[ref_index] if nframes else data)
    if ref_img.dtype.kind not in "biuf":
        raise MltemError(f"holds {ref_img.dtype} data; GPA needs real intensities", path=args.image)
    if not np.isfinite(ref_img).any():
        raise MltemError("holds no finite values (all NaN or infinite)", path=args.image)
    dtype = np.float64 if ref_img.dtype == np.float64 else np.float32

    g_px = None
    if args.spots is not None:
        g_px = np.asarray(args.spots, dtype=float).reshape(2, 2) * pixel
    mask_size_px = None if args.mask_size is None else args.mask_size * pixel
    if mask_size_px is not None and not mask_size_px > 0:
        raise MltemError(f"--mask-size must be > 0, got {args.mask_size}")
    if args.reference is not None:
        y0, y1, x0, x1 = args.reference
        if args.reference_units == "nm":
            if units != "nm":
                raise MltemError("--reference-units nm needs a calibrated image; give the region in px")
            y0, y1 = ((v - offsets[0]) / pixel for v in (y0, y1))
            x0, x1 = ((v - offsets[1]) / pixel for v in (x0, x1))
        reference = (int(math.floor(y0)), int(math.ceil(y1)), int(math.floor(x0)), int(math.ceil(x1)))
    else:
        reference = args.reference_mode
    register = bool(nframes > 1 and not args.no_register)
    out = io.OutputDir(args.out, force=args.force, inputs=[args.image], command="gpa")
    out.timings["load"] = time.perf_counter() - t0

    with out.timer("plan"):
        plan = make_plan(
            ref_img.astype(dtype, copy=False),
            g_vectors=g_px,
            mask=args.mask,
            mask_size=mask_size_px,
            reference=reference,
            definition=args.definition,
            angle_deg=args.angle_deg,
            register=register,
            dtype=dtype,
        )
    axes_img = [
        {"name": "y", "scale": pixel, "offset": offsets[0], "units": units},
        {"name": "x", "scale": pixel, "offset": offsets[1], "units": units},
    ]
    comp_axis = {"name": "component", "scale": 1.0, "offset": 0.0, "units": ""}
    margin = int(math.ceil(2 * plan.width_px))
    results: dict = {"frames": max(nframes, 1), "shape_yx": [m, n], "interior_margin_px": margin}
    if margin * 2 >= min(m, n):
        log.warning("the image (%d x %d px) is small for the mask: no pixel is two mask widths from the edges", m, n)

    if not nframes:
        with out.timer("gpa"):
            strain, phases, _ = plan.strain(ref_img.astype(dtype, copy=False), return_phases=True)
        res = GPAResult(strain, plan.g_reference, plan.g_mask, plan.mask, plan.mask_size, plan.width_px,
                        plan.reference, plan.definition, plan.angle_deg, phases)
        with out.timer("write"):
            sig = io.array_to_signal(strain, axes=[comp_axis, *axes_img], title="strain", signal_dims=2,
                                     quantity="Strain (exx, eyy, exy) and rotation (rad)")
            sig.metadata.set_item("Signal.components", COMPONENTS)
            out.save_signal("strain.hspy", sig)
        results.update(_stats(strain, margin))
        cores = find_dislocations(phases, plan.g_reference, margin_px=margin, group_px=max(3.0, plan.width_px / 4))
        results["dislocations"] = [
            {"y_nm": c["y"] * pixel + offsets[0], "x_nm": c["x"] * pixel + offsets[1], "winding": list(c["winding"]),
             "burgers_nm": [b * pixel for b in c["burgers_px"]]}
            for c in cores
        ]
        last, title = strain, Path(args.image).name
    else:
        import dask.array as da

        from mltem._progress import progress

        stack = data if lazy else da.from_array(data, chunks=(1, m, n))
        strain_lazy, drift = lazy_gpa(stack.astype(dtype), plan, register=register)
        stats = np.full((nframes, 4, 2), np.nan)
        name = strain_lazy.name
        inner = (slice(margin, m - margin or None), slice(margin, n - margin or None))

        def stat(block, block_info=None):
            k = block_info[0]["chunk-location"][0]
            v = block[0][(slice(None), *inner)] if 2 * margin < min(m, n) else block[0]
            stats[k, :, 0] = np.nanmean(v, axis=(1, 2))
            stats[k, :, 1] = np.nanstd(v, axis=(1, 2))
            return block

        strain_lazy = strain_lazy.map_blocks(stat, dtype=strain_lazy.dtype)
        nav_ax = s.axes_manager.navigation_axes[0] if len(nav) == 1 else None
        t_axis = {"name": nav_ax.name if nav_ax is not None and isinstance(nav_ax.name, str) else "frame",
                  "scale": float(nav_ax.scale) if nav_ax is not None else 1.0,
                  "offset": float(nav_ax.offset) if nav_ax is not None else 0.0,
                  "units": nav_ax.units if nav_ax is not None and isinstance(nav_ax.units, str) else ""}
        bar = progress(total=nframes, desc="GPA", unit="frame")
        from dask.callbacks import Callback

        class _Bar(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(key, tuple) and str(key[0]) == name:
                    bar.update(1)

        with out.timer("gpa_and_write"), _Bar():
            import hyperspy.api as hs

            sig = hs.signals.Signal2D(strain_lazy).as_lazy()
            for i, spec in enumerate([t_axis, comp_axis, *axes_img]):
                ax = sig.axes_manager.navigation_axes[1 - i] if i < 2 else sig.axes_manager.signal_axes[3 - i]
                for key in ("name", "scale", "offset", "units"):
                    setattr(ax, key, spec[key])
            sig.metadata.General.title = "strain"
            sig.metadata.set_item("Signal.quantity", "Strain (exx, eyy, exy) and rotation (rad)")
            sig.metadata.set_item("Signal.components", COMPONENTS)
            out.save_signal("strain.hspy", sig)
        bar.close()
        with out.timer("plot_frame"):
            last = np.asarray(strain_lazy[-1].compute())
        results["per_frame"] = {
            "mean": {c: stats[:, i, 0].tolist() for i, c in enumerate(("exx", "eyy", "exy", "rotation_rad"))},
            "std": {c: stats[:, i, 1].tolist() for i, c in enumerate(("exx", "eyy", "exy", "rotation_rad"))},
        }
        results["drift_nm"] = (drift * pixel).tolist() if register else None
        results["registered"] = register
        title = f"{Path(args.image).name}: frame {nframes - 1} of {nframes}"
    with out.timer("plot"):
        fig = plot_strain(last, pixel_size_nm=pixel, units=units, margin_px=margin, title=title)
        out.save_figure("strain.png", fig)
    g_nm = plan.g_reference / pixel
    params = {
        "pixel_size_nm": pixel if units == "nm" else None,
        "units": units,
        "spots": "given" if g_px is not None else "automatic",
        "g_vectors_per_nm": g_nm.tolist(),
        "g_vector_axes": ["g_y", "g_x"],
        "g_lengths_per_nm": np.hypot(g_nm[:, 0], g_nm[:, 1]).tolist(),
        "lattice_spacings_nm": (1 / np.hypot(g_nm[:, 0], g_nm[:, 1])).tolist(),
        "mask_centres_per_nm": (plan.g_mask / pixel).tolist(),
        "mask": plan.mask,
        "mask_size_per_nm": plan.mask_size / pixel,
        "mask_size_over_shortest_spacing": plan.mask_size / shortest_lattice_distance(plan.g_mask),
        "mask_width_nm": plan.width_px * pixel,
        "reference": list(reference) if isinstance(reference, tuple) else reference,
        "reference_units": "px" if isinstance(reference, tuple) else None,
        "reference_frame": ref_index if nframes else None,
        "definition": plan.definition,
        "angle_deg": plan.angle_deg,
        "components": COMPONENTS,
        "dtype": str(np.dtype(dtype)),
    }
    out.write_summary(parameters=params, results=results)
    msg = ", ".join(f"g{i + 1} = ({g[0]:.4g}, {g[1]:.4g}) 1/{units}" for i, g in enumerate(g_nm))
    print(f"GPA: {max(nframes, 1)} frame(s) of {m} x {n} px; {msg}; mask sigma/radius {plan.mask_size / pixel:.4g} 1/{units}")
    if "exx_mean" in results:
        print("interior mean: " + ", ".join(f"{c} {results[c + '_mean']:.3e}" for c in ("exx", "eyy", "exy", "rotation_rad")))
    print(f"wrote {out.path}")
    return 0


def _stats(strain, margin) -> dict:
    m, n = strain.shape[-2:]
    v = strain[:, margin : m - margin, margin : n - margin] if 2 * margin < min(m, n) else strain
    out = {}
    for i, c in enumerate(("exx", "eyy", "exy", "rotation_rad")):
        out[c + "_mean"] = float(np.nanmean(v[i]))
        out[c + "_std"] = float(np.nanstd(v[i]))
    return out

