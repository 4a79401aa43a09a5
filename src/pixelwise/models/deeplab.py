"""DeepLabV3+ (Chen et al. 2018): atrous spatial pyramid pooling over a dilated timm encoder.

The encoder's last stages trade stride for dilation (timm's ``output_stride``), so its deepest
feature is at stride 16 (or 8) instead of 32. ASPP looks at that feature at several rates at once:
a 1x1 conv, three 3x3 atrous convs (rates 6, 12, 18 at stride 16; doubled at stride 8, so they
cover the same part of the image) and the image's global average. The decoder upsamples the ASPP
output to stride 4, concatenates the encoder's stride-4 feature (reduced to 48 channels so the
richer ASPP features dominate), refines with two 3x3 convs and upsamples the logits 4x.

Any input size works: the input is padded to a multiple of 32 and the logits are cropped back.

>>> import torch
>>> model = DeepLabV3Plus(num_classes=3, encoder="resnet18", aspp_channels=16, decoder_channels=16).eval()
>>> model.aspp.rates, model.encoder.reductions
((6, 12, 18), [2, 4, 8, 16, 16])
>>> model(torch.zeros(1, 3, 67, 93)).shape
torch.Size([1, 3, 67, 93])
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.errors import ConfigError
from pixelwise.models.base import SegmentationModel
from pixelwise.models.blocks import ConvBNReLU, DoubleConv
from pixelwise.models.encoders import TimmEncoder
from pixelwise.models.registry import register_model

OUTPUT_STRIDES = (8, 16)
BASE_RATES = (6, 12, 18)  # the paper's rates at output stride 16


class DilatedTimmEncoder(TimmEncoder):
    """A :class:`TimmEncoder` whose deepest stages are dilated to reach ``output_stride`` 8 or 16.

    Weights behave exactly as in :class:`TimmEncoder` (``None``, ``"imagenet"`` or a local file,
    loaded by its ``load_weights``); dilation changes no weight shape, so the same files fit.
    All of timm's feature levels are returned (shallow to deep).
    """

    def __init__(self, name: str, in_channels: int = 3, weights: str | None = None, output_stride: int = 16) -> None:
        # timm's default out_indices (depth=None): every level the model has (4 for ConvNeXt, 5 for most).
        super().__init__(name, in_channels, weights, depth=None, output_stride=output_stride)
        # Some timm models accept output_stride and ignore it; the decoder's geometry relies on it.
        if self.reductions[-1] != output_stride or 4 not in self.reductions:
            raise ConfigError(f"encoder '{name}' gives features at strides {self.reductions}; DeepLabV3+ needs "
                              f"one at stride 4 and the deepest at {output_stride}")


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average -> 1x1 conv -> ReLU, broadcast back over the map.

    Unlike the paper (and torchvision / smp) there is no batch norm here: after global pooling each
    channel holds one value per image, so training-mode batch norm fails with batch size 1 and is
    noisy with small batches. A biased conv keeps the branch well defined for any batch size; the
    projection's batch norm after the concatenation normalises its output with the other branches.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.act(self.conv(x.mean(dim=(2, 3), keepdim=True)))
        # Bilinear upsampling of a 1x1 map is a broadcast; expand says so and exports to ONNX simply.
        return pooled.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: five parallel branches, concatenated and projected."""

    def __init__(self, in_channels: int, out_channels: int = 256, rates: tuple[int, ...] = BASE_RATES,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.branches = nn.ModuleList([
            ConvBNReLU(in_channels, out_channels, 1),
            *(ConvBNReLU(in_channels, out_channels, 3, dilation=r) for r in self.rates),
            ImagePooling(in_channels, out_channels),
        ])
        self.project = nn.Sequential(ConvBNReLU(len(self.branches) * out_channels, out_channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


@register_model("deeplabv3plus")
class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+: atrous spatial pyramid pooling over a dilated timm encoder, with a stride-4 decoder.

    See the module docstring. ``aspp`` and ``low_level`` belong to the decoder; they keep their own
    names so the state-dict keys of older checkpoints stay valid.
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 3, encoder: str = "resnet34",
                 encoder_weights: str | None = None, output_stride: int = 16, aspp_channels: int = 256,
                 decoder_channels: int = 256, low_level_channels: int = 48) -> None:
        super().__init__()
        if output_stride not in OUTPUT_STRIDES:
            raise ConfigError(f"DeepLabV3+ output_stride must be 8 or 16, got {output_stride}")
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.encoder = DilatedTimmEncoder(encoder, in_channels, encoder_weights, output_stride)
        # The first stride-4 level: the paper's "low-level features" (ResNet's layer1 output).
        self.low_level_index = self.encoder.reductions.index(4)
        # At stride 8 the map is twice as large, so twice the rates see the same context.
        rates = tuple(r * 16 // output_stride for r in BASE_RATES)
        self.aspp = ASPP(self.encoder.channels[-1], aspp_channels, rates)
        self.low_level = ConvBNReLU(self.encoder.channels[self.low_level_index], low_level_channels, 1)
        self.decoder = DoubleConv(aspp_channels + low_level_channels, decoder_channels)
        self.head = nn.Conv2d(decoder_channels, num_classes, kernel_size=1)
        # A multiple of output_stride would already make every feature an exact fraction of the input;
        # 32 (the undilated backbones' stride, as in U-Net) pads the same whatever the output_stride.
        self.multiple = 32

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at stride 4 (the low-level feature's); SegmentationModel.forward upsamples them 4x."""
        features = self.encoder(x)
        low = self.low_level(features[self.low_level_index])
        deep = F.interpolate(self.aspp(features[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.decoder(torch.cat([deep, low], dim=1)))
