"""Building blocks shared by the U-Net family.

>>> import torch
>>> DoubleConv(3, 8)(torch.zeros(1, 3, 16, 16)).shape
torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name != "gelu" else nn.GELU()


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by optional batch norm and the activation."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True, activation: str = "relu",
                 dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        for i in range(2):
            # A conv followed by batch norm needs no bias: BN's shift replaces it.
            layers.append(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1,
                                    bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UpBlock(nn.Module):
    """Upsample 2x with a 2x2 transposed convolution, concatenate the skip, then two 3x3 convs."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, batch_norm: bool = True,
                 activation: str = "relu") -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(out_channels + skip_channels, out_channels, batch_norm, activation)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetDecoder(nn.Module):
    """The U-Net expanding path: one :class:`UpBlock` per skip, deepest first.

    ``skip_channels`` lists the skip features from deep to shallow; a 0 means that level has no skip
    (a timm encoder has no full-resolution feature, so its last block only upsamples).
    """

    def __init__(self, bottom_channels: int, skip_channels: list[int], decoder_channels: list[int],
                 batch_norm: bool = True, activation: str = "relu") -> None:
        super().__init__()
        if len(skip_channels) != len(decoder_channels):
            raise ConfigError(f"decoder_channels needs {len(skip_channels)} values, got {len(decoder_channels)}")
        in_channels = [bottom_channels, *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            UpBlock(i, s, o, batch_norm, activation)
            for i, s, o in zip(in_channels, skip_channels, decoder_channels, strict=True)
        )

    def forward(self, bottom: torch.Tensor, skips: list[torch.Tensor | None]) -> torch.Tensor:
        x = bottom
        for block, skip in zip(self.blocks, skips, strict=True):
            x = block(x, skip)
        return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad the bottom and right of ``x`` so H and W divide by ``multiple``.

    Inputs are normalised, so zero is the dataset's mean colour: the least surprising fill.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x, (h, w)
