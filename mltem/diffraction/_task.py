"""The ``index`` training task: classify simulated SAED patterns into (phase, zone) templates.

Data: :func:`mltem.simulate.simulate_saed` over the template bank of the config's phases
(noise, centre offsets, beam stop, calibration off by up to +-3 %, foil thickness, tilt,
ellipticity), prepared exactly as at inference (:func:`mltem.diffraction.prepare_pattern`,
:func:`mltem.diffraction._network.network_input`). The direct-beam centre is the true one
plus a Gaussian jitter of ``data.centre_jitter_px`` (the accuracy of
:func:`mltem.diffraction.find_centre` on such patterns), which avoids the slowest
preprocessing step while training.

Config ``data`` keys: ``phases`` (built-in names or CIF paths; default the 10 shipped
phases), ``n_per_template`` (patterns per template, default 100), ``chunk`` (patterns
simulated at once), ``centre_jitter_px``, ``calibration_error``, ``max_zones``, ``label_smoothing``.
There is no "none" class: unmatched patterns are flagged by the refinement's score.
``augment``: ``radial_shift_rows`` (random shift of the ln|g| rows by up to this many
rows, a further calibration error), ``azimuth_roll`` (random in-plane rotation).
"""
from __future__ import annotations

import logging

import numpy as np

from mltem._progress import progress
from mltem.training import Task

__all__ = ["IndexTask", "DEFAULT_PHASES", "PolarAugment"]

log = logging.getLogger(__name__)

DEFAULT_PHASES = ("Si", "graphite", "Li2O", "LiF", "Li", "Cu", "LiCoO2", "LiFePO4", "Li4Ti5O12", "NMC111")
# Chunks are seeded from here on (benchmarks use 2024, tests and examples small seeds).
_SEED_BASE = 10**6


def _phases(cfg):
    from mltem.diffraction import load_phase

    specs = cfg.data.get("phases") or DEFAULT_PHASES
    if isinstance(specs, str):
        specs = [specs]
    return [load_phase(s) for s in specs]


def _settings(cfg):
    from mltem.diffraction import IndexSettings

    keys = ("max_zones", "max_index", "min_spots", "energy_ev")
    return IndexSettings(**{k: cfg.data[k] for k in keys if k in cfg.data})


def bank_for_config(cfg):
    """The template bank a config trains on (its classes, in output order)."""
    from mltem.diffraction import build_templates

    return build_templates(_phases(cfg), _settings(cfg))


class PolarAugment:
    """Random circular shift of the azimuth and small shift of the ln|g| rows.

    Called like an albumentations transform: ``aug(image=hwc)["image"]`` with the image
    (n_r, n_theta, channels). Row shifts fill with zeros (pattern) and zeros (validity).
    """

    def __init__(self, *, radial_shift_rows: int = 1, azimuth_roll: bool = True, seed: int = 0):
        self.radial, self.roll = int(radial_shift_rows), bool(azimuth_roll)
        self.rng = np.random.default_rng(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, *, image, mask=None):
        x = image
        if self.roll:
            x = np.roll(x, int(self.rng.integers(x.shape[1])), axis=1)
        if self.radial:
            s = int(self.rng.integers(-self.radial, self.radial + 1))
            if s:
                y = np.zeros_like(x)
                if s > 0:
                    y[s:] = x[:-s]
                else:
                    y[:s] = x[-s:]
                x = y
        return {"image": x} if mask is None else {"image": x, "mask": mask}


class IndexTask(Task):
    """Template classification of SAED patterns (see the module docstring)."""

    name = "index"
    # Targets are one-hot rows (optionally label-smoothed) and the loss the spine's soft
    # cross entropy: the spine's ArrayDataset turns scalar labels into (1,) tensors,
    # which its "cross_entropy" rejects.
    loss = "soft_cross_entropy"
    default_net = {"name": "pattern", "in_channels": 2, "n_r": 64, "channels": [12, 24, 48, 64], "hidden": 128}

    options = ("phase",)

    def apply_options(self, cfg, *, phase=None, **others) -> None:
        """``mltem train index --phase NEW.cif ...``: train on these phases instead of the
        config's; the model is exported as ``index-<phase names>``."""
        super().apply_options(cfg, **others)
        if phase:
            import re
            from pathlib import Path

            cfg.data["phases"] = list(phase)
            stems = [Path(p).stem if Path(p).suffix.lower() == ".cif" else p for p in phase]
            cfg.export["name"] = ("index-" + "-".join(re.sub(r"[^A-Za-z0-9]+", "", s) for s in stems))[:60]

    def make_data(self, cfg):
        from mltem.diffraction import prepare_pattern
        from mltem.diffraction._network import network_input
        from mltem.simulate import simulate_saed

        bank = bank_for_config(cfg)
        # the number of classes is known only now: the spine merges default_net after make_data
        self.default_net = {**type(self).default_net, "n_classes": len(bank)}
        n = int(cfg.data.get("n_per_template", 100)) * len(bank)
        chunk = int(cfg.data.get("chunk", 200))
        jitter = float(cfg.data.get("centre_jitter_px", 0.3))
        sim_kw = {k: cfg.data[k] for k in ("calibration_error", "centre_offset_px", "beam_stop_p") if k in cfg.data}
        log.info("index task: %d templates of %d phases, %d patterns", len(bank), len(bank.phases), n)
        rng = np.random.default_rng(cfg.seed)
        xs, ys = [], []
        bar = progress(total=n, desc="simulate SAED", unit="pattern")
        for k, start in enumerate(range(0, n, chunk)):
            m = min(chunk, n - start)
            d = simulate_saed(bank, m, seed=_SEED_BASE + 1000 * int(cfg.seed) + k, **sim_kw)
            for i in range(m):
                c = d.centre_yx[i] + rng.normal(0.0, jitter, 2)
                prep = prepare_pattern(d.images[i], d.pixel_size_inv_nm[i], bank.settings, centre=c)
                xs.append(network_input(prep))
                bar.update(1)
            ys.append(d.template)
        bar.close()
        labels = np.concatenate(ys)
        eps = float(cfg.data.get("label_smoothing", 0.0))
        y = np.full((n, len(bank)), eps / len(bank), np.float32)
        y[np.arange(n), labels] += 1.0 - eps
        return np.stack(xs), y

    def transform(self, cfg):
        a = cfg.augment or {}
        if not a.get("radial_shift_rows", 0) and not a.get("azimuth_roll", False):
            return None
        return PolarAugment(radial_shift_rows=int(a.get("radial_shift_rows", 0)), azimuth_roll=bool(a.get("azimuth_roll")),
                            seed=cfg.seed)

    def export_info(self, cfg) -> dict:
        from mltem.diffraction._network import INPUT_POOL, NORMALISATION, phase_signature, settings_dict

        bank = bank_for_config(cfg)
        st = bank.settings
        return {
            "classes": bank.labels,
            "normalisation": NORMALISATION,
            "outputs_meta": [{"name": "output", "shape": ["batch", len(bank)],
                              "meaning": "logits over the (phase, zone) templates in 'classes'; softmax max = confidence. "
                                         "In-plane angle and calibration come from the template refinement "
                                         "(mltem.diffraction.match_templates on the top-k classes)"}],
            "extra": {
                "phases": [phase_signature(p) for p in bank.phases],
                "settings": settings_dict(st),
                "input_pool": list(INPUT_POOL),
                "input_grid": {"rows": "ln|g| from g_min_inv_nm to g_max_inv_nm", "n_rows": st.n_r // INPUT_POOL[0],
                               "columns": "azimuth 0..360 deg from detector +x towards +y",
                               "n_columns": st.n_theta // INPUT_POOL[1]},
                "templates": [{"label": lab, "phase": bank.phases[p].name, "zone": list(z.uvw),
                               "ref_hkl": list(z.ref_hkl), "symmetry_order": z.symmetry_order}
                              for lab, (p, z) in zip(bank.labels, bank.entries)],
                "output_layout": "one tensor (batch, n_classes) of logits, classes in 'classes' order",
            },
        }
