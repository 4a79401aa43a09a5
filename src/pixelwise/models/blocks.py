"""Building blocks shared by the models: conv layers, upsamplers and the U-Net decoder.

>>> import torch
>>> DoubleConv(3, 8)(torch.zeros(1, 3, 16, 16)).shape
torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name != "gelu" else nn.GELU()


class GaussianNoise(nn.Module):
    """Add zero-mean Gaussian noise of standard deviation ``std`` in training mode; identity in eval mode.

    Keras' ``GaussianNoise`` layer: a regulariser that, placed on the input, makes the network see a
    slightly different image every epoch. ``std`` is in the units of the normalised input.

    >>> x = torch.ones(2, 3)
    >>> torch.equal(GaussianNoise(0.5).eval()(x), x), torch.equal(GaussianNoise(0.5).train()(x), x)
    (True, False)
    """

    def __init__(self, std: float = 0.0) -> None:
        super().__init__()
        if std < 0:
            raise ConfigError(f"input_noise is a standard deviation and cannot be negative, got {std}")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Decided on module state, not on the tensor, so an exported (eval) graph simply has no noise op.
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class ConvBNReLU(nn.Sequential):
    """A convolution with "same" padding, batch norm and ReLU (SegNet's only layer, DeepLabV3+'s ASPP branches).

    No bias by default: batch norm's shift replaces it (SegNet's encoder keeps one so VGG16-BN's weights load).

    >>> layer = ConvBNReLU(8, 4, kernel_size=3, dilation=6)
    >>> layer(torch.zeros(1, 8, 13, 15)).shape, layer[0].padding, layer[0].bias
    (torch.Size([1, 4, 13, 15]), (6, 6), None)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 bias: bool = False) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                      dilation=dilation, bias=bias),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConv2d(nn.Sequential):
    """A depthwise-separable convolution (Xception's, Keras' ``SeparableConv2D``): a ``kernel_size`` conv per
    input channel (``groups=in_channels``), then a 1x1 conv that mixes the channels.

    It spans fewer maps than a full conv but costs about ``1/out + 1/k**2`` of its weights and multiplies.
    The depthwise conv has no bias: one after the pointwise conv would absorb it.

    >>> conv = SeparableConv2d(8, 16)
    >>> conv(torch.zeros(1, 8, 5, 7)).shape, conv.depthwise.groups, sum(p.numel() for p in conv.parameters())
    (torch.Size([1, 16, 5, 7]), 8, 200)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__(OrderedDict(
            depthwise=nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels,
                                bias=False),
            pointwise=nn.Conv2d(in_channels, out_channels, 1, bias=bias),
        ))


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


UPSAMPLERS = ("transpose", "bilinear", "pixelshuffle")


def icnr_(weight: torch.Tensor, scale: int = 2,
          init: Callable[[torch.Tensor], object] = nn.init.kaiming_normal_) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution"), in place.

    ``weight`` is a ``(out * scale**2, in, k, k)`` conv weight that feeds ``nn.PixelShuffle(scale)``.
    Only a ``(out, in, k, k)`` sub-kernel is drawn with ``init`` and every one of its output channels is
    repeated ``scale**2`` times in a row: PixelShuffle spreads each run of ``scale**2`` consecutive
    channels over one ``scale x scale`` output block, so at initialisation all pixels of a block are equal
    and conv + shuffle is a nearest-neighbour upsampling of the sub-kernel's conv, free of the
    checkerboard pattern a plainly initialised sub-pixel conv starts from.

    >>> w = icnr_(torch.empty(8, 3, 1, 1))
    >>> torch.equal(w[0], w[3]), torch.equal(w[4], w[7]), torch.equal(w[0], w[4])
    (True, True, False)
    """
    out_channels, in_channels, *kernel = weight.shape
    if out_channels % scale**2:
        raise ValueError(f"icnr_: {out_channels} output channels do not divide by scale**2 = {scale**2}")
    # The sub-kernel has the same fan-in as the full one, so fan-in based inits keep their scale.
    sub = init(weight.new_empty(out_channels // scale**2, in_channels, *kernel))
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))
    return weight


def make_upsampler(in_channels: int, out_channels: int, mode: str = "transpose", blur: bool = False) -> nn.Module:
    """A learned 2x upsampling from ``in_channels`` to ``out_channels``, chosen by ``mode``.

    - ``"transpose"``: the classic U-Net's 2x2 stride-2 transposed conv.
    - ``"bilinear"``: fixed bilinear x2 interpolation, then a 1x1 conv to ``out_channels`` (the 3x3 convs
      after the skip concatenation already mix neighbours, so a 1x1 conv is enough to set the width).
    - ``"pixelshuffle"``: fastai's ``PixelShuffle_ICNR``: a 1x1 conv to ``4 * out_channels`` with ICNR
      init and zero bias, then ``nn.PixelShuffle(2)``; ``blur=True`` adds a replication pad + 2x2
      stride-1 average (Sugawara et al. 2019) that smooths the remaining checkerboard artefacts.
      Like the other two modes it is linear (no norm, no activation): the DoubleConv after the concat
      supplies both, and a ReLU here would drop half the upsampled signal before it meets the skip.

    >>> make_upsampler(8, 4, "bilinear")(torch.zeros(1, 8, 5, 7)).shape
    torch.Size([1, 4, 10, 14])
    """
    if mode not in UPSAMPLERS:
        raise ConfigError(f"unknown upsample '{mode}'; choose one of {', '.join(UPSAMPLERS)}")
    if blur and mode != "pixelshuffle":
        raise ConfigError(f"blur applies only to upsample='pixelshuffle', not '{mode}'")
    if mode == "transpose":  # a bare module, so the state-dict keys stay `up.weight`, `up.bias`
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    if mode == "bilinear":
        return nn.Sequential(OrderedDict(
            upsample=nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=1),
        ))
    # A 1x1 conv to 4x channels + shuffle spans the same maps as the 2x2 transposed conv; what differs
    # is the start: ICNR makes it begin as nearest-neighbour upsampling instead of a checkerboard.
    conv = nn.Conv2d(in_channels, out_channels * 4, kernel_size=1)
    icnr_(conv.weight)
    nn.init.zeros_(conv.bias)  # a random bias would differ inside each 2x2 block and undo ICNR
    layers: dict[str, nn.Module] = {"conv": conv, "shuffle": nn.PixelShuffle(2)}
    if blur:  # pad top/left by one so the 2x2 average keeps the size and stays aligned with the skip
        layers["blur"] = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))
    return nn.Sequential(OrderedDict(layers))


class UpBlock(nn.Module):
    """Upsample 2x with ``upsample`` (see :func:`make_upsampler`), concatenate the skip, then two 3x3 convs.

    >>> block = UpBlock(8, 4, 6, upsample="pixelshuffle", blur=True)
    >>> block(torch.zeros(1, 8, 5, 7), torch.zeros(1, 4, 10, 14)).shape
    torch.Size([1, 6, 10, 14])
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, batch_norm: bool = True,
                 activation: str = "relu", upsample: str = "transpose", blur: bool = False) -> None:
        super().__init__()
        # Built first, as before, so a seeded default model draws the same initial weights as older versions.
        self.up = make_upsampler(in_channels, out_channels, upsample, blur)
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
    ``upsample`` and ``blur`` choose every block's upsampler (see :func:`make_upsampler`).
    A subclass changes the blocks by setting ``block_class`` (an :class:`UpBlock` subclass with the same
    arguments), e.g. Attention U-Net's gated blocks.
    """

    block_class: type[UpBlock] = UpBlock

    def __init__(self, bottom_channels: int, skip_channels: list[int], decoder_channels: list[int],
                 batch_norm: bool = True, activation: str = "relu", upsample: str = "transpose",
                 blur: bool = False) -> None:
        super().__init__()
        if len(skip_channels) != len(decoder_channels):
            raise ConfigError(f"decoder_channels needs {len(skip_channels)} values, got {len(decoder_channels)}")
        in_channels = [bottom_channels, *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            self.block_class(i, s, o, batch_norm, activation, upsample, blur)
            for i, s, o in zip(in_channels, skip_channels, decoder_channels, strict=True)
        )

    def forward(self, bottom: torch.Tensor, skips: list[torch.Tensor | None]) -> torch.Tensor:
        x = bottom
        for block, skip in zip(self.blocks, skips, strict=True):
            x = block(x, skip)
        return x

