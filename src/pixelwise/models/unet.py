"""U-Net: the classic network of Ronneberger et al. (2015), and the same decoder over a timm encoder.

Classic (``encoder=None``): ``depth`` encoder blocks of two 3x3 convs with ``f, 2f, 4f, ...`` filters
and 2x2 max-pooling, a bottleneck of ``2**depth * f`` filters, dropout 0.1 / 0.3 on the deepest block
and the bottleneck, and a decoder of 2x2 transposed convs, skip concatenation and two 3x3 convs.
``upsample`` swaps the decoder's transposed convs for ``"bilinear"`` interpolation + 1x1 conv or
fastai's ``"pixelshuffle"`` (ICNR-initialised sub-pixel conv, with ``blur=True`` to smooth it);
see :func:`pixelwise.models.blocks.make_upsampler`.
The defaults (``f = 16``, 5 blocks, 7.8M parameters) are the tutorials' CPU-sized version; the paper's
network is ``base_filters=64, depth=4`` (31M parameters).
With ``encoder="resnet34"`` (any timm model) the encoder is that backbone's feature pyramid.
``full_res_skip=16`` (timm encoders only) gives the last decoder block a skip of that many channels computed
from the input by two 3x3 convs: a timm backbone's shallowest feature is at stride 2, where a pole one or two
pixels wide is already blurred away, so without it the decoder paints full resolution from half.
``input_noise=0.1`` adds Gaussian noise of that standard deviation to the (normalised) input while
training, as a Keras ``GaussianNoise`` input layer does; evaluation and export never see it.

Any input size works: the input is padded to the multiple the network needs and the logits are
cropped back, so ``forward`` returns ``(N, num_classes, H, W)`` for every ``H, W``.

>>> import torch
>>> model = UNet(num_classes=3, base_filters=4).eval()
>>> model(torch.zeros(1, 3, 67, 93)).shape
torch.Size([1, 3, 67, 93])
>>> UNet(num_classes=3, encoder="resnet18", full_res_skip=8)(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 3, 64, 64])
>>> UNet(num_classes=3, base_filters=4, depth=2, upsample="pixelshuffle", blur=True).decoder.blocks[0].up.shuffle
PixelShuffle(upscale_factor=2)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError
from pixelwise.models.base import SegmentationModel
from pixelwise.models.blocks import DoubleConv, GaussianNoise, UNetDecoder
from pixelwise.models.encoders import TimmEncoder
from pixelwise.models.registry import register_model


class ClassicEncoder(nn.Module):
    """The contracting path: returns the skip features (shallow to deep) and the bottleneck."""

    def __init__(self, in_channels: int, base_filters: int, depth: int, batch_norm: bool, activation: str,
                 dropout: bool) -> None:
        super().__init__()
        widths = [base_filters * 2**i for i in range(depth)]
        self.blocks = nn.ModuleList()
        for i, width in enumerate(widths):
            deepest = i == depth - 1
            self.blocks.append(DoubleConv(in_channels if i == 0 else widths[i - 1], width, batch_norm, activation,
                                          dropout=0.1 if (dropout and deepest) else 0.0))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(widths[-1], widths[-1] * 2, batch_norm, activation,
                                     dropout=0.3 if dropout else 0.0)
        self.channels = widths
        self.bottom_channels = widths[-1] * 2

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for block in self.blocks:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        return skips, self.bottleneck(x)


@register_model("unet")
class UNet(SegmentationModel):
    """U-Net; classic by default, over a timm backbone with ``encoder=NAME``.

    See the module docstring. ``upsample`` is ``"transpose"`` (default, the paper's), ``"bilinear"`` or
    ``"pixelshuffle"``; ``blur=True`` smooths the pixel shuffle's output.
    A subclass swaps the decoder by setting ``decoder_class`` (a :class:`UNetDecoder` subclass).
    """

    decoder_class: type[UNetDecoder] = UNetDecoder

    def __init__(self, num_classes: int = 2, in_channels: int = 3, base_filters: int = 16, depth: int = 5,
                 batch_norm: bool = True, activation: str = "relu", dropout: bool = True, encoder: str | None = None,
                 encoder_weights: str | None = None, decoder_channels: list[int] | None = None,
                 upsample: str = "transpose", blur: bool = False, input_noise: float = 0.0,
                 full_res_skip: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        # No parameters or buffers: checkpoints and seeded initial weights are the same with or without it.
        self.input_noise = GaussianNoise(input_noise)
        if encoder is None:
            self.encoder: nn.Module = ClassicEncoder(in_channels, base_filters, depth, batch_norm, activation, dropout)
            skips = self.encoder.channels[::-1]
            decoder_channels = decoder_channels or skips
            bottom = self.encoder.bottom_channels
            self.multiple = 2**depth
        else:
            self.encoder = TimmEncoder(encoder, in_channels, encoder_weights, depth)
            # timm's shallowest feature is at stride 2, so the last decoder block has no skip.
            skips = [*self.encoder.channels[-2::-1], 0]
            decoder_channels = decoder_channels or [256, 128, 64, 32, 16][:depth]
            bottom = self.encoder.channels[-1]
            self.multiple = self.encoder.reductions[-1]
        self.full_res = self.full_res_stem(encoder, in_channels, full_res_skip, batch_norm, activation)
        if self.full_res is not None:
            if self.encoder.reductions[0] != 2:
                raise ConfigError(f"full_res_skip needs an encoder whose first feature is at stride 2; {encoder}'s is "
                                  f"at {self.encoder.reductions[0]}: remove full_res_skip")
            skips[-1] = full_res_skip
        self.decoder = self.decoder_class(bottom, skips, list(decoder_channels), batch_norm, activation,
                                          upsample, blur)
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, kernel_size=1)

    @staticmethod
    def full_res_stem(encoder: str | None, in_channels: int, channels: int, batch_norm: bool,
                      activation: str) -> nn.Module | None:
        """Two 3x3 convs on the input, the skip of the last decoder block (``full_res_skip``); None when 0."""
        if channels < 0:
            raise ConfigError(f"full_res_skip is a number of channels (0 for none), got {channels}")
        if not channels:
            return None
        if encoder is None:
            raise ConfigError("full_res_skip is for a timm encoder: the classic U-Net already has a "
                              "full-resolution skip; remove it")
        return DoubleConv(in_channels, channels, batch_norm, activation)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Bottom feature and the skips from deep to shallow."""
        if isinstance(self.encoder, ClassicEncoder):
            skips, bottom = self.encoder(x)
            return bottom, skips[::-1]
        features = self.encoder(x)
        full_res = self.full_res(x) if self.full_res is not None else None
        return features[-1], [*features[-2::-1], full_res]

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # Noise before padding, so the padding stays the exact zero (mean colour) the model also sees in eval.
        return self.input_noise(x)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        # With a timm encoder whose first feature is at stride 4 the logits come out smaller than x;
        # SegmentationModel.forward resizes them.
        bottom, skips = self.encode(x)
        return self.head(self.decoder(bottom, skips))
