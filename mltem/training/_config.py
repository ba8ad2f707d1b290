"""Training configuration: a typed dataclass read from YAML (``train/configs/*.yaml``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from mltem._errors import MltemError

__all__ = ["TrainConfig", "load_config"]


@dataclass
class TrainConfig:
    """Everything that determines a training run; stored inside every checkpoint.

    Attributes
    ----------
    task : str
        Task name in the task registry (``segment``, ``valence``, ...).
    seed : int
        Seeds numpy, torch and the data generators; CPU runs are deterministic.
    max_epochs : int
    max_steps : int
        Stop after this many optimiser steps (-1: no limit).
    batch_size : int
    lr : float
        AdamW learning rate.
    weight_decay : float
    val_fraction : float
        Share of the data held out for validation.
    num_workers : int
        DataLoader workers (0 on this 2-core machine is usually fastest).
    net : dict
        ``name`` in :data:`mltem.nets.ARCHITECTURES` plus its keyword arguments.
    data : dict
        Task-specific data recipe (sizes, generator settings, files).
    augment : dict
        Task-specific augmentation settings (albumentations for images).
    export : dict
        ``name`` of the exported model and export options.
    init_from : str
        An mltem checkpoint (``model.ckpt``) or a shipped ONNX model (registry name,
        card or ``.onnx``) whose network weights start the run (fine-tuning); the
        network arguments must match. Empty: random initialisation.
    """

    task: str
    seed: int = 1234
    max_epochs: int = 10
    max_steps: int = -1
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    num_workers: int = 0
    net: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    export: dict = field(default_factory=dict)
    init_from: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "TrainConfig":
        if not isinstance(d, dict):
            raise MltemError(f"{source}: a training config must be a mapping of keys to values")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MltemError(f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        if "task" not in d:
            raise MltemError(f"{source}: the config needs a 'task'")
        cfg = cls(**d)
        for name, typ in (("seed", int), ("max_epochs", int), ("max_steps", int), ("batch_size", int), ("num_workers", int)):
            if not isinstance(getattr(cfg, name), typ):
                raise MltemError(f"{source}: '{name}' must be an integer, got {getattr(cfg, name)!r}")
        for name in ("lr", "weight_decay", "val_fraction"):
            v = getattr(cfg, name)
            if not isinstance(v, (int, float)):
                raise MltemError(f"{source}: '{name}' must be a number, got {v!r}")
            setattr(cfg, name, float(v))
        if not 0.0 < cfg.val_fraction < 1.0:
            raise MltemError(f"{source}: 'val_fraction' must lie between 0 and 1, got {cfg.val_fraction}")
        if cfg.batch_size < 1 or cfg.max_epochs < 1:
            raise MltemError(f"{source}: 'batch_size' and 'max_epochs' must be >= 1")
        return cfg


def load_config(path, **overrides) -> TrainConfig:
    """Read a YAML training config; ``overrides`` replace top-level keys.

    Raises
    ------
    MltemError
        Missing file, invalid YAML, unknown keys or values of the wrong type.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MltemError("no such config file", path=path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MltemError(f"invalid YAML ({str(exc).splitlines()[0]})", path=path) from exc
    if isinstance(d, dict):
        d.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(d, source=str(path))
