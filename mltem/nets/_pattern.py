"""A rotation-invariant classifier of diffraction patterns on a log-polar grid (plain PyTorch)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PatternNet"]


class _PolarConv(nn.Module):
    """3 x 3 convolution, circular along the azimuth (last axis), zero-padded along ln|g|."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=0, bias=False)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = torch.cat([x[..., -1:], x, x[..., :1]], dim=-1)  # wrap the azimuth (exports as Slice/Concat)
        x = F.pad(x, (0, 0, 1, 1))
        return F.relu(self.norm(self.conv(x)))


class PatternNet(nn.Module):
    """Classifies a log-polar diffraction pattern into (phase, zone axis) templates.

    Rows of the input are ln|g| on a fixed grid (a calibration error is a shift along
    them), columns the azimuth over 360 degrees (an in-plane rotation is a circular
    shift). Convolutions wrap around the azimuth and the features are pooled over it
    (max and mean), so the logits do not depend on the in-plane angle; the radial
    position stays (it tells d-spacings apart) and is read by a small MLP. The in-plane
    angle and the exact calibration are left to the template refinement.

    Args:
        in_channels: Input channels (pattern, and the valid-pixel mask).
        n_classes: Number of templates (logits).
        n_r: Rows (radial bins) of the input; a multiple of ``2 ** (len(channels) - 1)``.
        channels: Channels of each stage (two convolutions each; 2 x 2 max pooling
            between stages).
        hidden: Width of the MLP.
        dropout: Dropout before the last layer.

    Shapes:
        input (N, in_channels, n_r, n_theta) -> logits (N, n_classes).

    Example:
        >>> net = PatternNet(2, 60, n_r=64)
        >>> net(torch.zeros(3, 2, 64, 120)).shape
        torch.Size([3, 60])
    """

    def __init__(self, in_channels: int = 2, n_classes: int = 2, *, n_r: int = 64, channels: Sequence[int] = (16, 32, 64),
                 hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        if n_classes < 2 or in_channels < 1 or n_r < 4 or not channels:
            raise ValueError(f"need n_classes >= 2, in_channels >= 1, n_r >= 4 and channels; got {n_classes}, "
                             f"{in_channels}, {n_r}, {channels}")
        r_down = 2 ** (len(channels) - 1)
        if n_r % r_down:
            raise ValueError(f"n_r ({n_r}) must be a multiple of {r_down} for {len(channels)} stages")
        stages, cin = [], in_channels
        for c in channels:
            stages.append(nn.Sequential(_PolarConv(cin, c), _PolarConv(c, c)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.n_r = n_r
        feat = 2 * cin * (n_r // r_down)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(feat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def forward(self, x):
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < len(self.stages) - 1:
                x = F.max_pool2d(x, 2)
        x = torch.cat([x.amax(dim=-1), x.mean(dim=-1)], dim=1)  # (N, 2C, n_r / 2**(k-1)): azimuth pooled
        return self.head(x)
