"""The ``valence`` training task: simulated L2,3 spectra (plus optional reference spectra
of known valence) -> fractions of each oxidation state.

One model per element: the oxidation states, energy grid and physics differ per element,
each model stays tiny (< 0.5 MB) and trains in a few minutes on a CPU, and a new
chemistry is one more small model that leaves the shipped ones untouched.

Config ``data`` keys: ``element`` (required), ``n`` (spectra, default 24000),
``pure_fraction`` (0.4), ``scales_ev`` (channel widths of the simulated spectra,
[0.05, 0.1, 0.2, 0.3]), ``no_background_fraction`` (0.1: spectra whose background was
already removed), ``ranges`` (overrides of the simulator's nuisance ranges, see
:func:`mltem.simulate.random_l23_batch`), ``references`` (a folder of reference spectra:
see :func:`load_references`), ``reference_fraction`` (0.3), ``model`` (an element model
for a new chemistry: ``spin_orbit_ev``, ``area_per_hole_ev`` and ``states``: list of
{valence, l3_ev, ratio, holes, l3_lines, l2_lines}).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from mltem._errors import MltemError
from mltem.training import Task

__all__ = ["ValenceTask", "load_references", "simulated_inputs", "element_model_from_config"]

log = logging.getLogger(__name__)


def element_model_from_config(data: dict):
    """The simulator model for a config's ``data`` (table model or ``data['model']``)."""
    from mltem.eels._edges import get_edge
    from mltem.simulate import ElementModel, ValenceState, element_model

    el = data.get("element")
    if not el:
        raise MltemError("the valence config needs data.element (e.g. Mn)")
    get_edge(el)
    if "model" not in data:
        return element_model(el)
    spec = data["model"]
    try:
        states = tuple(
            ValenceState(int(s["valence"]), float(s["l3_ev"]), float(s["ratio"]), float(s["holes"]),
                         tuple(tuple(map(float, ln)) for ln in s["l3_lines"]), tuple(tuple(map(float, ln)) for ln in s["l2_lines"]))
            for s in spec["states"]
        )
        return ElementModel(str(el).capitalize(), float(spec["spin_orbit_ev"]), states, float(spec.get("area_per_hole_ev", 3.5)))
    except (KeyError, TypeError, ValueError) as exc:
        raise MltemError(f"data.model is not a valid element model ({exc}); see mltem.eels._task") from exc


def load_references(folder, element: str, valences) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Read reference spectra of known valence from ``folder/references.csv``.

    The CSV has columns ``file`` (a spectrum file mltem reads, relative to the folder)
    and ``valence`` (one of the element's oxidation states).

    Returns
    -------
    energies, spectra : list of numpy.ndarray
        One (E,) axis and (E,) spectrum per reference.
    fractions : numpy.ndarray
        (R, K) one-hot rows.
    """
    from mltem.io import load

    folder = Path(folder)
    table = folder / "references.csv"
    if not table.is_file():
        raise MltemError("a references folder needs references.csv with columns file,valence", path=folder)
    energies, spectra, rows = [], [], []
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                v = int(float(row["valence"]))
            except (KeyError, ValueError) as exc:
                raise MltemError("references.csv needs columns file,valence with integer valences", path=table) from exc
            if v not in valences:
                raise MltemError(f"reference valence {v} is not one of the {element} states {tuple(valences)}", path=table)
            s = load(folder / row["file"])
            ax = s.axes_manager.signal_axes[0]
            data = np.asarray(s.data, float).reshape(-1, ax.size).mean(0)
            energies.append(np.asarray(ax.axis, float))
            spectra.append(data)
            rows.append(np.eye(len(valences))[list(valences).index(v)])
    if not rows:
        raise MltemError("references.csv lists no spectra", path=table)
    return energies, spectra, np.array(rows)


def _augment_references(energies, spectra, fractions, n, rng, element):
    """Mixtures of the references with random offset, dispersion, blur, background and noise."""
    from scipy.ndimage import gaussian_filter1d

    from mltem.eels._valence import model_input

    k = fractions.shape[1]
    de = 0.1
    lo = max(e[0] for e in energies)
    hi = min(e[-1] for e in energies)
    e = np.arange(lo, hi, de)
    base = np.stack([np.interp(e, ei, si) for ei, si in zip(energies, spectra)])  # (R, E)
    base /= np.abs(base).max(1, keepdims=True)
    w = rng.dirichlet(np.full(len(base), 0.5), size=n)
    pure = rng.uniform(size=n) < 0.4
    w[pure] = np.eye(len(base))[rng.integers(0, len(base), pure.sum())]
    y = w @ fractions
    y /= y.sum(1, keepdims=True)
    off = rng.uniform(-5, 5, n)
    disp = rng.uniform(-0.03, 0.03, n)
    x = np.empty((n, e.size))
    for i in range(n):
        src = e[0] + (e - e[0]) * (1 + disp[i]) - off[i]
        spec = np.interp(src, e, w[i] @ base)
        spec = gaussian_filter1d(spec, rng.uniform(0.01, 0.6) / de)
        spec = spec * 10 ** rng.uniform(2, 4)
        spec += rng.uniform(0, 0.3) * spec.max() * (e / e[0]) ** -rng.uniform(2, 5)
        x[i] = rng.poisson(np.clip(spec, 0, None))
    return model_input(x, e, element=element).x, y.astype(np.float32)


def simulated_inputs(element: str, n: int, *, seed: int, data: dict | None = None, chunk: int = 2000):
    """Network inputs and fraction labels from the simulator (the training recipe).

    Parameters
    ----------
    element : str
    n : int
    seed : int
    data : dict, optional
        The config's ``data`` recipe (``pure_fraction``, ``scales_ev``,
        ``no_background_fraction``, ``ranges``, ``model``).
    chunk : int
        Spectra simulated at a time.

    Returns
    -------
    x : numpy.ndarray
        (n, 1, L) float32.
    y : numpy.ndarray
        (n, K) float32 fractions.
    """
    from mltem.eels._valence import model_input
    from mltem.simulate import random_l23_batch

    data = dict(data or {})
    data.setdefault("element", element)
    m = element_model_from_config(data)
    rng = np.random.default_rng(seed)
    scales = list(data.get("scales_ev", [0.05, 0.1, 0.2, 0.3]))
    no_bg = float(data.get("no_background_fraction", 0.1))
    ranges = dict(data.get("ranges", {}))
    xs, ys = [], []
    l3 = m.states[0].l3_ev
    for i, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        de = scales[i % len(scales)]
        e = np.arange(l3 - 45.0, l3 + m.spin_orbit_ev + 40.0, de)
        _, spec, frac = random_l23_batch(m.element, size, rng, energy_ev=e, pure_fraction=float(data.get("pure_fraction", 0.4)), ranges=ranges, model=m)
        if no_bg > 0:
            # spectra whose background was removed upstream: subtract the noiseless background estimate
            idx = rng.uniform(size=size) < no_bg
            if idx.any():
                _, spec2, frac2 = random_l23_batch(m.element, int(idx.sum()), rng, energy_ev=e, pure_fraction=0.5,
                                                   ranges={**ranges, "background_ratio": (0.0, 0.0)}, model=m)
                spec[idx], frac[idx] = spec2 - spec2[:, :20].mean(1, keepdims=True), frac2
        prep = model_input(spec, e, element=m.element)
        xs.append(prep.x)
        ys.append(frac.astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


class ValenceTask(Task):
    """Fractions of each oxidation state of one element from its L2,3 edge."""

    name = "valence"
    loss = "soft_cross_entropy"
    default_net = {"name": "spectrum", "length": 256, "channels": [12, 24, 48], "hidden": 64}

    options = ("element", "references")

    def apply_options(self, cfg, *, element=None, references=None, **others) -> None:
        """``mltem train valence --element EL [--references DIR]``: retarget the config to
        another element (exported as ``valence-<el>``) and mix in reference spectra."""
        super().apply_options(cfg, **others)
        if element:
            cfg.data["element"] = element
            cfg.export["name"] = f"valence-{element.lower()}"
        if references:
            cfg.data["references"] = references

    def make_data(self, cfg):
        data = dict(cfg.data)
        m = element_model_from_config(data)
        self.default_net = {**self.default_net, "out_features": len(m.states)}
        n = int(data.get("n", 24000))
        x, y = simulated_inputs(m.element, n, seed=cfg.seed, data=data)
        if data.get("references"):
            from mltem.eels._edges import get_edge

            get_edge(m.element)
            energies, spectra, fr = load_references(data["references"], m.element, m.valences)
            rng = np.random.default_rng(cfg.seed + 1)
            n_ref = int(float(data.get("reference_fraction", 0.3)) * n)
            xr, yr = _augment_references(energies, spectra, fr, n_ref, rng, m.element)
            x, y = np.concatenate([x, xr]), np.concatenate([y, yr])
            log.info("added %d augmented reference spectra from %d references", n_ref, len(spectra))
        return x, y

    def export_info(self, cfg) -> dict:
        from mltem.eels._valence import GRID_LENGTH, ONSET_FRACTION, relative_grid

        data = dict(cfg.data)
        m = element_model_from_config(data)
        length = int(cfg.net.get("length", GRID_LENGTH))
        # reliability reference: principal components of fresh simulated inputs
        x, _ = simulated_inputs(m.element, 4000, seed=cfg.seed + 99, data=data)
        flat = x[:, 0, :].astype(float)
        mean = flat.mean(0)
        _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
        comps = vt[:16]
        d = flat - mean
        res = np.sqrt(np.mean((d - (d @ comps.T) @ comps) ** 2, axis=1))
        q = np.quantile(res, np.linspace(0, 1, 101))
        grid = relative_grid(m.element, length=length)
        return {
            "classes": list(m.class_names),
            "normalisation": (
                "mltem.eels.model_input: pre-edge background removed (power law, or constant if already removed), "
                f"resampled on the L3 onset ({ONSET_FRACTION:.0%} of the L3 maximum) + relative grid, divided by the maximum"
            ),
            "outputs_meta": [{"name": "output", "shape": ["batch", len(m.states)], "meaning": "logits; softmax = fraction of each oxidation state"}],
            "extra": {
                "element": m.element,
                "valences": list(m.valences),
                "grid_length": length,
                "grid_start_ev": float(grid[0]),
                "grid_stop_ev": float(grid[-1]),
                "onset_fraction": ONSET_FRACTION,
                "pca_mean": [round(float(v), 5) for v in mean],
                "pca_components": [[round(float(v), 5) for v in row] for row in comps],
                "residual_quantiles": [float(v) for v in q],
                "simulator": "mltem.simulate.simulate_l23 (literature white-line energies, L3/L2 ratios and multiplet shapes)",
            },
        }
