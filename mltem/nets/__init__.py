"""Network architectures (plain PyTorch; needs ``mltem[train]``) and their registry."""
from __future__ import annotations

from mltem._errors import MltemError

__all__ = ["ARCHITECTURES", "create_net"]

ARCHITECTURES = {"unet": "UNet", "spectrum": "SpectrumNet"}


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
    cls = getattr(_unet, ARCHITECTURES[name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise MltemError(f"network '{name}': {exc}") from exc
