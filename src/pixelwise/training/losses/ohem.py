"""``ohem``: online hard example mining, the cross-entropy of the hardest pixels only (top-k CE).

Most pixels of a road scene are easy (sky, road) and their small losses, summed, drown the few hard ones
(the edges of poles and signs, small pedestrians). OHEM (Shrivastava et al. 2016; in segmentation as in
PSPNet/BiSeNet training code) keeps the ``top_fraction`` of valid pixels with the largest loss, but never
fewer than ``min_pixels``, and averages those.

>>> import torch
>>> logits = torch.zeros(1, 2, 2, 2)
>>> logits[0, 0, 0, 0] = 9.0  # one confident, right pixel; three at ln 2
>>> round(float(OhemCrossEntropyLoss(top_fraction=0.75, min_pixels=1)(logits, torch.zeros(1, 2, 2).long())), 4)
0.6931
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses.base import register_loss


@register_loss("ohem")
class OhemCrossEntropyLoss(nn.Module):
    """Mean CE over the hardest ``top_fraction`` of the valid pixels (at least ``min_pixels``)."""

    def __init__(self, class_weights: Sequence[float] | None = None, top_fraction: float = 0.25,
                 min_pixels: int = 10_000) -> None:
        super().__init__()
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("weight", weight)
        self.top_fraction, self.min_pixels = top_fraction, min_pixels

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pixel_losses = F.cross_entropy(logits.float(), target, weight=self.weight, ignore_index=TARGET_IGNORE,
                                       reduction="none")[target != TARGET_IGNORE]
        if pixel_losses.numel() == 0:
            return logits.sum() * 0.0
        k = min(pixel_losses.numel(), max(self.min_pixels, int(self.top_fraction * pixel_losses.numel())))
        return pixel_losses.topk(k).values.mean()
