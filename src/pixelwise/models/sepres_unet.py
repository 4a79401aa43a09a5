"""A U-Net-shaped network of separable convolutions with residual blocks, after Keras' "Image segmentation with
a U-Net-like architecture" example (the Oxford-IIIT pets tutorial), which borrows Xception's blocks.

- entry: 3x3 conv, stride 2, ``widths[0]`` = 32 filters, batch norm, ReLU;
- down blocks (64, 128, 256): (ReLU, depthwise-separable 3x3 conv, batch norm) x 2, then a 3x3 stride-2 max
  pool; the block input, projected by a 1x1 stride-2 conv, is added back (Xception's residual);
- up blocks (256, 128, 64, 32): (ReLU, 3x3 transposed conv, batch norm) x 2, then 2x nearest upsampling;
  the block input, upsampled and projected by a 1x1 conv, is added back;
- head: a 3x3 conv to ``num_classes`` logits (the tutorial's softmax belongs to the loss here).

Unlike the U-Net, no encoder feature crosses to the decoder: the residuals stay inside their blocks, so it
is "U-Net-like" in shape only. Separable convs keep it light: 2.05M parameters at the defaults.
``widths`` (entry width, then one per down block; the up path mirrors it) or ``base_filters`` and ``depth``
(``widths = [f, 2f, ..., 2**depth f]``) set its size.

Where this differs from the Keras model, on purpose: convs followed by batch norm have no bias (the norm's
shift replaces it: with 3 classes 2,053,315 parameters, Keras' 2,055,203 less 1,888 biases), and the "same"
padding of the stride-2 conv and pool is symmetric, so their windows are centred on the pixel the stride-2
residual conv samples (TensorFlow pads only the bottom and right of an even-sized input, which shifts them
half a pixel).

Any input size works: the input is padded to a multiple of ``2**len(widths)`` (16 by default) and the
logits are cropped back.

>>> import torch
>>> model = SepResUNet(num_classes=3, widths=[4, 8, 16]).eval()
>>> model(torch.zeros(1, 3, 67, 93)).shape, model.multiple
(torch.Size([1, 3, 67, 93]), 8)
>>> [block.convs[1].pointwise.out_channels for block in model.down], [block.convs[1].out_channels for block in model.up]
([8, 16], [16, 8, 4])
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError
from pixelwise.models.base import SegmentationModel
from pixelwise.models.blocks import SeparableConv2d
from pixelwise.models.registry import register_model


class SepResDownBlock(nn.Module):
    """Two (ReLU, separable conv, BN), a 3x3 stride-2 max pool, plus the input through a 1x1 stride-2 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.ReLU(),  # not in place: the block input is also the residual's
            SeparableConv2d(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            SeparableConv2d(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        # padding=1 keeps each pooling window centred on the pixel the residual's stride-2 1x1 conv takes.
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.residual = nn.Conv2d(in_channels, out_channels, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x)) + self.residual(x)


class SepResUpBlock(nn.Module):
    """Two (ReLU, 3x3 transposed conv, BN) and 2x upsampling, plus the input upsampled and through a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.ReLU(),  # not in place: the block input is also the residual's
            nn.ConvTranspose2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Upsample(scale_factor=2, mode="nearest"),
        )
        # The tutorial upsamples, then convs. Nearest upsampling only copies pixels and a 1x1 conv acts on each
        # pixel alone, so conv-then-upsample is the same map at a quarter of the multiplies.
        self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.Upsample(scale_factor=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x) + self.residual(x)


@register_model("sepres_unet")
class SepResUNet(SegmentationModel):
    """Keras' pets-tutorial U-Net-like net: separable-conv residual down blocks, transposed-conv residual up blocks.

    See the module docstring.
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 3, base_filters: int = 32, depth: int = 3,
                 widths: list[int] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = list(widths) if widths is not None else [base_filters * 2**i for i in range(depth + 1)]
        if not widths or min(widths) < 1:
            raise ConfigError(f"widths needs at least the entry width, all positive; got {widths}")
        self.widths = widths
        self.entry = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(SepResDownBlock(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True))
        # The up path mirrors the widths and takes one block more: it also undoes the entry conv's stride.
        up = widths[::-1]
        self.up = nn.ModuleList(SepResUpBlock(i, o) for i, o in zip([up[0], *up[:-1]], up, strict=True))
        self.head = nn.Conv2d(widths[0], num_classes, 3, padding=1)
        self.multiple = 2 ** len(widths)  # the entry conv and every down block halve the size

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(x)
        for block in self.down:
            x = block(x)
        for block in self.up:
            x = block(x)
        return self.head(x)
