"""Network architectures (plain PyTorch; needs ``mltem[train]``) and their registry."""
from __future__ import annotations

from mltem._errors import MltemError

__all__ = ["ARCHITECTURES", "create_net"]

ARCHITECTURES = {"unet": "UNet", "spectrum": "SpectrumNet", "pattern": "mltem.nets._pattern:PatternNet"}


def create_net(name: str, **kwargs):
    """Build a network by registry name, e.g. ``create_net("unet", in_channels=1, out_channels=5)``.

    Raises
    ------
    MltemError
        Unknown name or arguments the architecture does not take.
    """
    from mltem._errors import require

    require("torch", feature="the networks")
    from mltem.nets import _unet

    if name not in ARCHITECTURES:
        raise MltemError(f"unknown network '{name}'; available: {', '.join(sorted(ARCHITECTURES))}")
    target = ARCHITECTURES[name]
    if ":" in target:  # "module:Class" of an architecture in its own module
        import importlib

        mod, _, target = target.partition(":")
        cls = getattr(importlib.import_module(mod), target)
    else:
        cls = getattr(_unet, target)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise MltemError(f"network '{name}': {exc}") from exc
