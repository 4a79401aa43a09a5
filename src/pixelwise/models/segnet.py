"""SegNet: the encoder-decoder of Badrinarayanan, Kendall and Cipolla (2017).

The encoder is VGG16 with batch norm (13 3x3 convs in blocks of 2, 2, 3, 3, 3 with ``f, 2f, 4f, 8f, 8f``
filters), each block followed by 2x2 max-pooling that also returns *where* each maximum was. The
decoder mirrors it: every block starts by max-unpooling with the indices of its mirrored encoder block
(the maxima go back to their argmax positions, everything else is zero; nothing is learned), and its
convs densify that sparse map. A 3x3 conv then gives the class logits. Unlike U-Net, no features are
copied across: only the pooling indices are, which is what makes SegNet light on memory.

``base_filters=64`` is the paper's network (29.5M parameters with 2 classes) and can start from timm's ImageNet
``vgg16_bn`` (``encoder_weights="imagenet"`` or a local ``.safetensors``/``.pth`` of it).

Any input size works: the input is padded to a multiple of 32 (five 2x poolings) and the logits are
cropped back, so ``forward`` returns ``(N, num_classes, H, W)`` for every ``H, W``.

ONNX: export with ``torch.onnx.export(..., dynamo=True)`` (unpooling becomes ``ScatterND``, opset 18); the
TorchScript exporter (``dynamo=False``) has no ``max_unpool2d``.

>>> import torch
>>> model = SegNet(num_classes=3, base_filters=4).eval()
>>> model(torch.zeros(1, 3, 67, 93)).shape
torch.Size([1, 3, 67, 93])
>>> sum(isinstance(m, nn.MaxUnpool2d) for m in model.modules())
5
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.models.base import SegmentationModel
from pixelwise.models.blocks import ConvBNReLU
from pixelwise.models.pretrained import imagenet_state_dict, read_state_dict
from pixelwise.models.registry import register_model

# VGG16's five blocks: how many convs each has and its width in units of ``base_filters``.
VGG16_CONVS = (2, 2, 3, 3, 3)
VGG16_WIDTHS = (1, 2, 4, 8, 8)
# timm's vgg16_bn keeps its convs and batch norms in one Sequential: ``features.<index>.<param>``.
_FEATURE_KEY = re.compile(r"(?:^|\.)features\.(\d+)\.(\w+)$")


class SegNetEncoder(nn.Module):
    """VGG16-BN's conv layers; returns the bottom feature and, per block, the pooling indices and the
    size before pooling (shallow to deep)."""

    def __init__(self, in_channels: int, base_filters: int) -> None:
        super().__init__()
        self.widths = [base_filters * m for m in VGG16_WIDTHS]
        self.blocks = nn.ModuleList()
        previous = in_channels
        for n_convs, width in zip(VGG16_CONVS, self.widths, strict=True):
            # The convs keep their bias (unlike the decoder's) so VGG16-BN's weights load unchanged.
            self.blocks.append(nn.Sequential(*(ConvBNReLU(previous if i == 0 else width, width, bias=True)
                                               for i in range(n_convs))))
            previous = width
        # return_indices: the decoder needs the argmax of every 2x2 window to unpool.
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)

    def conv_bn_layers(self) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
        """The 13 (conv, batch norm) pairs in VGG16's order."""
        return [(layer[0], layer[1]) for block in self.blocks for layer in block]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Size]]]:
        pooled = []
        for block in self.blocks:
            x = block(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            pooled.append((indices, size))
        return x, pooled


class SegNetDecoderBlock(nn.Module):
    """Max-unpool with the mirrored encoder block's indices, then that block's convs in reverse.

    The last conv changes the width to the next (shallower) block's, as in SegNet-Tutorial's
    ``conv4_1_D`` (512 -> 256) etc.
    """

    def __init__(self, channels: int, out_channels: int, n_convs: int) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.convs = nn.Sequential(*(ConvBNReLU(channels, out_channels if i == n_convs - 1 else channels)
                                     for i in range(n_convs)))

    def forward(self, x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
        # Arguments passed positionally so forward hooks on ``unpool`` see the indices and size.
        # ``size`` is the pre-pool feature's: with an odd size, 2x the pooled size would be one short.
        return self.convs(self.unpool(x, indices, size))


@register_model("segnet")
class SegNet(SegmentationModel):
    """SegNet: VGG16-BN encoder, decoder upsampling with the encoder's max-pooling indices.

    See the module docstring; every conv but the head is a 3x3 :class:`~pixelwise.models.blocks.ConvBNReLU`.
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 3, base_filters: int = 64,
                 encoder_weights: str | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = SegNetEncoder(in_channels, base_filters)
        widths = self.encoder.widths
        # Decoder block i mirrors encoder block i; they run deepest first. The shallowest ends with f
        # channels (the paper's conv1_2_D) and the head plays conv1_1_D.
        self.decoder = nn.ModuleList(
            SegNetDecoderBlock(widths[i], widths[max(i - 1, 0)], VGG16_CONVS[i])
            for i in reversed(range(len(VGG16_CONVS)))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 3, padding=1)
        self.multiple = 2 ** len(VGG16_CONVS)
        if encoder_weights not in (None, "none"):
            if base_filters != 64:
                raise ConfigError(f"encoder_weights='{encoder_weights}' needs base_filters=64 (VGG16's widths), "
                                  f"got base_filters={base_filters}; set encoder_weights to none")
            self.load_vgg16_bn(encoder_weights)

    def load_vgg16_bn(self, weights: str | Path) -> None:
        """Copy timm ``vgg16_bn`` weights (``"imagenet"`` or a local file) into the encoder."""
        if weights == "imagenet":
            state = imagenet_state_dict("vgg16_bn")
        else:
            state = read_state_dict(weights)
        # Group ``features.N.*`` by N and keep the order: convs have 4-d weights, batch norms running stats.
        layers: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            match = _FEATURE_KEY.search(key)
            if match:
                layers.setdefault(int(match[1]), {})[match[2]] = value
        ordered = [layers[n] for n in sorted(layers)]
        convs = [p for p in ordered if "weight" in p and p["weight"].ndim == 4]
        norms = [p for p in ordered if "running_mean" in p]
        own = self.encoder.conv_bn_layers()
        if len(convs) != len(own) or len(norms) != len(own):
            raise CheckpointError(f"{weights}: does not fit SegNet's VGG16-BN encoder (found {len(convs)} convs and "
                                  f"{len(norms)} batch norms under 'features.', need {len(own)} of each); "
                                  "is it a vgg16_bn checkpoint?")
        first = convs[0]["weight"]
        in_channels = own[0][0].in_channels
        if first.shape[1] != in_channels:
            # Grayscale or multispectral input: timm's rule sums or repeats the RGB filters.
            import timm  # here: its import is slow (see pixelwise.models.encoders), and rarely needed

            convs[0] = {**convs[0], "weight": timm.models.adapt_input_conv(in_channels, first)}
        with torch.no_grad():
            for i, ((conv, norm), conv_state, norm_state) in enumerate(zip(own, convs, norms, strict=True)):
                for module, source in ((conv, conv_state), (norm, norm_state)):
                    target = module.state_dict()
                    missing = [k for k in target if k not in source]
                    if missing:
                        raise CheckpointError(f"{weights}: layer {i} of vgg16_bn has no '{missing[0]}'; "
                                              "is it a vgg16_bn checkpoint?")
                    wrong = [k for k, v in target.items() if source[k].shape != v.shape]
                    if wrong:
                        raise CheckpointError(f"{weights}: conv {i} '{wrong[0]}' has shape "
                                              f"{tuple(source[wrong[0]].shape)}, SegNet needs "
                                              f"{tuple(target[wrong[0]].shape)}; is it vgg16_bn?")
                    module.load_state_dict({k: source[k] for k in target})

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        x, pooled = self.encoder(x)
        for block, (indices, size) in zip(self.decoder, reversed(pooled), strict=True):
            x = block(x, indices, size)
        return self.head(x)
