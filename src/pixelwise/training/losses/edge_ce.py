"""``edge_ce``: cross-entropy that weighs the pixels near a class boundary more.

A thin object is almost all boundary: a pole 3 pixels wide has no pixel more than one away from its edge,
while a wall's edge pixels are a sliver of it. Mistakes at edges are what cost thin and small classes their
IoU, yet plain CE counts them like any pixel of sky. This loss multiplies the CE of every pixel within
``width`` pixels of a label change by ``1 + boost`` (the boundary weighting of U-Net's paper, Ronneberger
et al. 2015, in its simple band form; also used for road scenes, e.g. "Gated-SCNN"'s boundary-aware losses),
on top of the class weights. Ignored pixels neither count nor make a boundary.

>>> import torch
>>> target = torch.zeros(1, 1, 6, dtype=torch.long)
>>> target[..., 3:] = 1
>>> edge_band(target, width=1).int().tolist()  # the two pixels either side of the change
[[[0, 0, 1, 1, 0, 0]]]
>>> loss = EdgeWeightedCrossEntropy(boost=4.0)
>>> round(float(loss(torch.zeros(1, 2, 1, 6), target)), 4)  # every pixel at ln 2: the weighted mean is ln 2
0.6931
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses.base import register_loss


def edge_band(target: torch.Tensor, width: int = 2) -> torch.Tensor:
    """``(N, H, W)`` bool: valid pixels with a pixel of another valid label within ``width`` (a square window).

    A label changes inside a window exactly where the window's largest and smallest labels differ; ignored
    pixels are left out of both (as -inf/+inf), so the edge of an ignored region is not a boundary.
    """
    valid = target != TARGET_IGNORE
    labels = target.float().unsqueeze(1)
    size = 2 * width + 1
    highest = F.max_pool2d(labels.masked_fill(~valid.unsqueeze(1), float("-inf")), size, stride=1, padding=width)
    lowest = -F.max_pool2d((-labels).masked_fill(~valid.unsqueeze(1), float("-inf")), size, stride=1,
                           padding=width)
    return (highest != lowest).squeeze(1) & valid


@register_loss("edge_ce")
class EdgeWeightedCrossEntropy(nn.Module):
    """Class-weighted CE, each pixel within ``width`` of a label change counted ``1 + boost`` times."""

    def __init__(self, class_weights: Sequence[float] | None = None, boost: float = 2.0, width: int = 2) -> None:
        super().__init__()
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("weight", weight)
        self.boost, self.width = boost, width

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != TARGET_IGNORE
        if not valid.any():  # a batch of ignored pixels only: the mean over none would be NaN
            return logits.sum() * 0.0
        pixel_losses = F.cross_entropy(logits.float(), target, ignore_index=TARGET_IGNORE, reduction="none")
        # The mean is over the same weights as the sum (class weight x boundary boost), as nn.CrossEntropyLoss
        # divides by the summed class weights: the loss's scale does not depend on how much boundary a batch has.
        pixel_weights = 1.0 + self.boost * edge_band(target, self.width).float()
        if self.weight is not None:
            pixel_weights = pixel_weights * self.weight[target.clamp(min=0)]
        pixel_weights = pixel_weights * valid
        return (pixel_losses * pixel_weights).sum() / pixel_weights.sum()
