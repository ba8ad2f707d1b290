"""Small networks in plain PyTorch, shared by the tasks."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["UNet", "SpectrumNet"]


def _block(cin: int, cout: int, dims: int) -> nn.Sequential:
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return nn.Sequential(
        conv(cin, cout, 3, padding=1, bias=False),
        norm(cout),
        nn.ReLU(inplace=True),
        conv(cout, cout, 3, padding=1, bias=False),
        norm(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A plain U-Net for per-pixel classification or regression.

    Args:
        in_channels: Input channels (e.g. 1 for a frame, 3 for a frame and its two
            neighbours).
        out_channels: Output channels (classes for segmentation; logits).
        base: Channels of the first level; level ``k`` has ``base * 2**k``.
        depth: Number of down-sampling steps. Height and width must be multiples of
            ``2**depth``.

    Shapes:
        input (N, in_channels, H, W) -> output (N, out_channels, H, W).

    Example:
        >>> net = UNet(1, 5, base=8, depth=3)
        >>> net(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 5, 64, 64])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, base: int = 16, depth: int = 4):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"depth and base must be >= 1, got depth={depth}, base={base}")
        self.depth = depth
        ch = [base * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, ch[0], 2)] + [_block(ch[k], ch[k + 1], 2) for k in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[k + 1], ch[k], 2, stride=2) for k in reversed(range(depth))])
        self.dec = nn.ModuleList([_block(2 * ch[k], ch[k], 2) for k in reversed(range(depth))])
        self.head = nn.Conv2d(ch[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        """Height and width of the input must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            h, w = x.shape[-2:]
            m = self.multiple
            if h % m or w % m:
                raise ValueError(
                    f"UNet(depth={self.depth}) needs height and width divisible by {m}, got {h}x{w}; "
                    f"pad to {-(-h // m) * m}x{-(-w // m) * m}"
                )
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


class SpectrumNet(nn.Module):
    """A 1D convolutional network that maps a spectrum to class logits (or values).

    Args:
        length: Number of energy channels of the input.
        out_features: Output size (oxidation states for valence).
        channels: Channels of the convolution stages; each stage halves the length.
        hidden: Width of the fully connected layer.

    Shapes:
        input (N, 1, length) -> output (N, out_features).

    Example:
        >>> SpectrumNet(256, 3)(torch.zeros(4, 1, 256)).shape
        torch.Size([4, 3])
    """

    def __init__(self, length: int, out_features: int, *, channels: Sequence[int] = (16, 32, 64), hidden: int = 64):
        super().__init__()
        stages, cin = [], 1
        for c in channels:
            stages += [_block(cin, c, 1), nn.MaxPool1d(2)]
            cin = c
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(8)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * 8, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))
        self.length = length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
