"""Depthwise convolutions in fp32 inside CPU bf16 autocast: the same model, a faster training step.

Why: on CPUs, oneDNN's bf16 kernels for *depthwise* convolutions (one filter per channel, the inverted
residual blocks of EfficientNet/MobileNet encoders) are slower than its fp32 ones, above all backwards.
Measured on a 2-core Xeon with AMX (8 images, channels_last, forward + backward): a 96-channel stride-2
depthwise conv at 120x160 took 118 ms in bf16 and 33 ms in fp32. Dense convolutions are the opposite
(bf16 1.4-3x faster), so only the depthwise ones are switched: the U-Net over EfficientNet-Lite0 then
trained at 240x320 at 8.9 instead of 7.1 images/s (+26%). fp32 is also the more precise of the two, so
no result gets worse; the weights and their names do not change (a checkpoint does not know).

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1))
>>> depthwise_in_fp32(net)
1
>>> type(net[0]).__name__, type(net[1]).__name__
('Fp32DepthwiseConv2d', 'Conv2d')
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Fp32DepthwiseConv2d(nn.Conv2d):
    """A ``Conv2d`` that runs in fp32 whatever the autocast around it (same parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return super().forward(x.float())


def is_depthwise(module: nn.Module) -> bool:
    """A grouped convolution with one input channel per group (groups == in_channels > 1)."""
    return type(module) is nn.Conv2d and module.groups > 1 and module.groups == module.in_channels


def depthwise_in_fp32(model: nn.Module) -> int:
    """Switch every depthwise ``Conv2d`` of ``model`` to :class:`Fp32DepthwiseConv2d`, in place; returns how many.

    Only for CPU bf16 autocast (the trainer calls it then); the class is swapped rather than the module
    wrapped, so parameter names, ``state_dict`` and ``deepcopy`` (the EMA copy) are unchanged.
    """
    count = 0
    for module in model.modules():
        if is_depthwise(module):
            module.__class__ = Fp32DepthwiseConv2d
            count += 1
    return count
