"""``mltem valence SPECTRA --element EL --out DIR``: oxidation state from L2,3 edges.

Writes ``valence.csv`` (one row per spectrum), ``valence.hspy`` (maps, for line scans
and spectrum images), ``valence.png`` and ``summary.json``.
"""
from __future__ import annotations

from mltem.cli._main import add_output_arguments


def add_arguments(p) -> None:
    p.add_argument("spectra", metavar="SPECTRA", help="core-loss EELS file: one spectrum, a line scan or a spectrum image")
    p.add_argument("--element", required=True, help="transition metal whose L2,3 edge to read (Ti, V, Cr, Mn, Fe, Co, Ni, Cu)")
    add_output_arguments(p)
    p.add_argument("--low-loss", metavar="FILE", help="matching low-loss spectra: t/lambda and Fourier-ratio deconvolution")
    p.add_argument("--model", metavar="NAME", help="valence model (registry name or card path); default valence-<element>")
    p.add_argument("--background-window", nargs=2, type=float, metavar=("E0", "E1"), help="pre-edge background window in eV")
    p.add_argument("--pca", type=int, metavar="N", help="PCA-denoise the spectrum image with N components first")


def _energy_axis(signal, path):
    import numpy as np

    from mltem._errors import MltemError

    ax = signal.axes_manager.signal_axes[0]
    if not getattr(ax, "is_uniform", True):
        raise MltemError("the energy axis is not uniform; resample it first", path=path)
    if ax.units not in ("eV", None, "") and str(ax.units) != "<undefined>":
        raise MltemError(f"the signal axis is in '{ax.units}', not eV: is this an EELS spectrum?", path=path)
    e = np.asarray(ax.axis, dtype=float)
    if e[-1] - e[0] < 20:
        raise MltemError(f"the energy axis spans only {e[-1] - e[0]:.1f} eV (scale {ax.scale}); is it calibrated in eV?", path=path)
    return e


def run(args) -> int:
    import numpy as np

    from mltem import io
    from mltem._errors import MltemError
    from mltem.eels import get_edge
    from mltem.eels._valence import analyse_valence

    edge = get_edge(args.element)
    if edge.name != "L2,3":
        raise MltemError(f"--element {args.element}: valence reads L2,3 edges of transition metals, not the {edge.name} edge")
    if args.pca is not None and args.pca < 1:
        raise MltemError(f"--pca must be >= 1, got {args.pca}")
    s = io.load(args.spectra)
    io.require_kind(s, "spectrum", path=args.spectra)
    io.check_finite(s, path=args.spectra)
    e = _energy_axis(s, args.spectra)
    inputs = [args.spectra] + ([args.low_loss] if args.low_loss else [])
    out = io.OutputDir(args.out, force=args.force, inputs=inputs, command="valence")
    nav_shape = tuple(s.data.shape[:-1])
    if args.pca is not None and int(np.prod(nav_shape or (1,))) <= args.pca:
        raise MltemError(f"--pca {args.pca} needs more spectra than components; the file holds {int(np.prod(nav_shape or (1,)))}")
    ll = ell = None
    if args.low_loss:
        sl = io.load(args.low_loss)
        io.require_kind(sl, "spectrum", path=args.low_loss)
        ell = _energy_axis(sl, args.low_loss)
        if not (ell[0] < 0 < ell[-1]):
            raise MltemError("the low-loss spectrum must include the zero-loss peak (0 eV)", path=args.low_loss)
        ll = np.asarray(sl.data, dtype=float)
        if ll.shape[:-1] not in ((), nav_shape):
            raise MltemError(f"low-loss navigation shape {ll.shape[:-1]} differs from the core-loss {nav_shape}", path=args.low_loss)
    lazy = bool(getattr(s, "_lazy", False))
    with out.timer("load"):
        data = s.data if lazy else np.asarray(s.data, dtype=np.float64)
    with out.timer("analyse"):
        res = analyse_valence(
            data, e, element=args.element, model=args.model, low_loss=ll, low_loss_energy_ev=ell,
            window_ev=tuple(args.background_window) if args.background_window else None, pca_components=args.pca,
        )
    n = int(np.prod(nav_shape)) if nav_shape else 1
    frac = res.fractions.reshape(n, -1)
    cols = ["index"] + (["y", "x"] if len(nav_shape) == 2 else ["x"] if len(nav_shape) == 1 else [])
    fcols = [f"frac_{c}" for c in res.class_names]
    cols += ["valence", *fcols, "l3_l2_ratio", "l3_onset_ev", "l3_peak_ev", "reliability"] + (["t_lambda"] if res.t_lambda is not None else [])
    flat = {k: np.asarray(getattr(res, k)).reshape(n) for k in ("valence", "l3_l2_ratio", "l3_onset_ev", "l3_peak_ev", "reliability")}
    tl = None if res.t_lambda is None else np.asarray(res.t_lambda).reshape(n)
    rows = []
    for i in range(n):
        r = {"index": i, **{k: v[i] for k, v in flat.items()}, **{c: frac[i, j] for j, c in enumerate(fcols)}}
        if len(nav_shape) == 2:
            r["y"], r["x"] = divmod(i, nav_shape[1])
        elif len(nav_shape) == 1:
            r["x"] = i
        if tl is not None:
            r["t_lambda"] = tl[i]
        rows.append(r)
    out.save_csv("valence.csv", rows, cols)
    map_names = ["valence", *fcols, "l3_l2_ratio", "l3_onset_ev", "reliability"]
    if nav_shape:
        stack = np.stack([flat["valence"], *frac.T, flat["l3_l2_ratio"], flat["l3_onset_ev"], flat["reliability"]]).reshape(len(map_names), *nav_shape)
        nav_axes = s.axes_manager.navigation_axes[::-1]  # numpy order
        axes = [{"name": "map"}] + [{"name": a.name, "scale": a.scale, "offset": a.offset, "units": a.units} for a in nav_axes]
        sig = io.array_to_signal(stack.astype(np.float32), axes=axes, title="valence maps: " + ", ".join(map_names), signal_dims=len(nav_shape))
        sig.metadata.set_item("General.map_names", map_names)
        out.save_signal("valence.hspy", sig)
    from mltem.eels._plot import plot_valence_maps, plot_valence_spectrum

    def one_signal(i):
        if res.signal is not None:
            return res.signal.reshape(n, -1)
        from mltem.eels._valence import model_input

        sig = np.zeros((n, e.size))
        sig[i] = model_input(np.asarray(data.reshape(n, -1)[i], float), e, element=edge.element).signal[0]
        return sig

    if len(nav_shape) == 0 or n == 1:
        fig = plot_valence_spectrum(e, one_signal(0), res, 0, element=edge.element, title=f"{edge.element} L2,3: {s.metadata.General.title or ''}")
    else:
        maps = {k: flat[k].reshape(nav_shape if len(nav_shape) == 2 else (1, n)) for k in ("valence", "l3_l2_ratio", "l3_onset_ev", "reliability")}
        nav = s.axes_manager.navigation_axes  # (x, y)
        sx = nav[0].scale
        sy = nav[1].scale if len(nav) > 1 else sx
        ny, nx = maps["valence"].shape
        units = nav[0].units if isinstance(nav[0].units, str) and nav[0].units not in ("", "<undefined>") else "px"
        fig = plot_valence_maps(maps, extent=[0, nx * sx, ny * sy, 0], units=units, title=f"{edge.element} valence ({res.model})")
    out.save_figure("valence.png", fig)
    if nav_shape and n > 1:
        i_best = int(np.nanargmax(flat["reliability"])) if np.isfinite(flat["reliability"]).any() else 0
        out.save_figure("valence_spectrum.png", plot_valence_spectrum(e, one_signal(i_best), res, i_best, element=edge.element, title=f"{edge.element} L2,3, spectrum {i_best}"))
    from mltem.registry import find_model

    card = find_model(res.model, task="valence")

    def stat(a):
        a = a[np.isfinite(a)]
        return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())} if a.size else None

    results = {
        "n_spectra": n,
        "navigation_shape": list(nav_shape),
        "valences": list(res.valences),
        "valence": stat(flat["valence"]),
        "mean_fractions": {c: float(np.nanmean(frac[:, j])) for j, c in enumerate(fcols)},
        "l3_l2_ratio": stat(flat["l3_l2_ratio"]),
        "l3_onset_ev": stat(flat["l3_onset_ev"]),
        "reliability": stat(flat["reliability"]),
        "map_order": map_names if nav_shape else [],
    }
    if tl is not None:
        results["t_lambda"] = stat(tl)
    params = {"element": edge.element, "model": res.model, "lazy": lazy, "low_loss": args.low_loss, "background_window_ev": args.background_window, "pca": args.pca}
    out.write_summary(parameters=params, results=results, models=[{"name": card.name, "file": str(card.path), "sha256": card.sha256}])
    v = results["valence"]
    print(f"{edge.element}: {n} spectra, mean valence {v['mean']:.2f} (min {v['min']:.2f}, max {v['max']:.2f}) -> {out.path}")
    return 0
