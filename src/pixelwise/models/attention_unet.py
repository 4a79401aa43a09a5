"""Attention U-Net (Oktay et al. 2018, "Attention U-Net: Learning Where to Look for the Pancreas").

The classic U-Net of :mod:`pixelwise.models.unet` (same encoder, same decoder blocks, same options) with
an additive attention gate on every skip connection. Before a decoder block concatenates its skip ``x``,
the gate weighs it pixel by pixel with coefficients ``alpha`` in ``[0, 1]`` computed from ``x`` and the
gating signal ``g``, the coarser decoder feature the block is about to upsample::

    alpha = sigmoid(psi(relu(W_g g + W_x x)) + b_psi)        skip passed on = x * alpha

``W_g`` and ``W_x`` are 1x1 convs (with batch norm when ``batch_norm``) to ``F_int`` = half the skip's
channels, as in the authors' code; ``W_g g`` is computed at g's resolution and resized bilinearly to x's.
The coarse ``g`` carries context the shallow skip lacks, so the gates learn to pass the skip's fine detail
only where the object is and to suppress the background clutter it would otherwise bring into the decoder.

``attention_maps(x)`` returns every gate's ``alpha`` for an input (for plots and tests); a forward hook on
``decoder.blocks[i].gate.psi`` sees the same maps during ordinary forward passes.

Any input size works: the input is padded to a multiple of ``2**depth`` and the logits are cropped back.

>>> import torch
>>> model = AttentionUNet(num_classes=3, base_filters=4, depth=3).eval()
>>> model(torch.zeros(1, 3, 67, 93)).shape
torch.Size([1, 3, 67, 93])
>>> [tuple(a.shape) for a in model.attention_maps(torch.zeros(1, 3, 67, 93))]
[(1, 1, 17, 24), (1, 1, 34, 47), (1, 1, 67, 93)]
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.models.blocks import UNetDecoder, UpBlock
from pixelwise.models.registry import register_model
from pixelwise.models.unet import UNet


def _conv1x1_bn(in_channels: int, out_channels: int, batch_norm: bool, bias: bool) -> nn.Sequential:
    layers: dict[str, nn.Module] = {"conv": nn.Conv2d(in_channels, out_channels, 1, bias=bias and not batch_norm)}
    if batch_norm:
        layers["bn"] = nn.BatchNorm2d(out_channels)
    return nn.Sequential(OrderedDict(layers))


class AttentionGate(nn.Module):
    """Additive attention gate: ``forward(g, x)`` returns ``x * alpha``, ``alpha`` of shape ``(N, 1, *x.shape[-2:])``.

    ``psi`` (a 1x1 conv to one channel and the sigmoid) outputs ``alpha``; hook it to read the coefficients.
    ``psi`` keeps its bias and has no batch norm, as in the paper's formula: batch norm would re-centre the
    one-channel logits on every batch, so ``b_psi``, the gate's overall openness, could not be learned.

    >>> gate = AttentionGate(gate_channels=8, skip_channels=4, inter_channels=2)
    >>> gate(torch.zeros(1, 8, 5, 7), torch.ones(1, 4, 10, 14)).shape
    torch.Size([1, 4, 10, 14])
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int, batch_norm: bool = True) -> None:
        super().__init__()
        # Only one of the two summed projections needs a bias (the paper's b_g); batch norm's shift replaces it.
        self.wg = _conv1x1_bn(gate_channels, inter_channels, batch_norm, bias=True)
        self.wx = _conv1x1_bn(skip_channels, inter_channels, batch_norm, bias=False)
        self.psi = nn.Sequential(OrderedDict(conv=nn.Conv2d(inter_channels, 1, 1), sigmoid=nn.Sigmoid()))

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # Project first, then resize: the 1x1 conv costs 4x less on g's coarser grid and both are linear.
        # The size comes from x's shape (no Python branch on it), so ONNX export keeps H, W dynamic.
        g = F.interpolate(self.wg(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
        alpha = self.psi(F.relu(g + self.wx(x)))
        return x * alpha  # (N, 1, H, W) broadcasts over the skip's channels


class AttentionUpBlock(UpBlock):
    """An :class:`UpBlock` whose skip first goes through an :class:`AttentionGate` gated by the block's input."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, batch_norm: bool = True,
                 activation: str = "relu", upsample: str = "transpose", blur: bool = False) -> None:
        super().__init__(in_channels, skip_channels, out_channels, batch_norm, activation, upsample, blur)
        self.gate = AttentionGate(in_channels, skip_channels, max(skip_channels // 2, 1), batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if skip is not None:
            skip = self.gate(x, skip)
        return super().forward(x, skip)


class AttentionUNetDecoder(UNetDecoder):
    block_class = AttentionUpBlock


@register_model("attention_unet")
class AttentionUNet(UNet):
    """Attention U-Net: classic U-Net whose skips pass through additive attention gates (Oktay et al. 2018).

    :class:`UNet`'s classic network (see the module docstring) with gated skips. Its options are the
    classic U-Net's: the gates are built for the classic encoder's skips, so there is no ``encoder`` option.
    """

    decoder_class = AttentionUNetDecoder

    def __init__(self, num_classes: int = 2, in_channels: int = 3, base_filters: int = 16, depth: int = 5,
                 batch_norm: bool = True, activation: str = "relu", dropout: bool = True, upsample: str = "transpose",
                 blur: bool = False, input_noise: float = 0.0) -> None:
        super().__init__(num_classes, in_channels, base_filters, depth, batch_norm, activation, dropout,
                         upsample=upsample, blur=blur, input_noise=input_noise)

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every gate's coefficients for input ``x``, deepest first: ``(N, 1, ceil(H / s), ceil(W / s))`` at
        each skip's stride ``s`` (1 for the last), cropped to the image like the logits. Runs in the current
        mode (call ``eval()`` first for inference-time maps) and records no gradient."""
        maps: list[torch.Tensor] = []
        hooks = [block.gate.psi.register_forward_hook(lambda _m, _i, out: maps.append(out.detach()))
                 for block in self.decoder.blocks]
        try:
            with torch.no_grad():
                self(x)
        finally:
            for hook in hooks:
                hook.remove()
        h, w = x.shape[-2:]
        padded_h = h + (-h) % self.multiple
        cropped = []
        for alpha in maps:
            # The padding is at the bottom and right: the image is each map's top-left ceil(H / s) x ceil(W / s).
            stride = padded_h // alpha.shape[-2]
            cropped.append(alpha[..., : -(-h // stride), : -(-w // stride)])
        return cropped

