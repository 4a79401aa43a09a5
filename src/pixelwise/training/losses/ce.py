"""``ce``: cross-entropy with optional class weights.

>>> import torch
>>> loss = CrossEntropyLoss(class_weights=[1.0, 3.0])
>>> round(float(loss(torch.zeros(1, 2, 2, 2), torch.tensor([[[0, 1], [1, -1]]]))), 4)  # ln 2
0.6931
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses.base import register_loss


@register_loss("ce")
class CrossEntropyLoss(nn.CrossEntropyLoss):
    """Cross-entropy with optional class weights; ignored pixels do not count."""

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        super().__init__(weight=weight, ignore_index=TARGET_IGNORE)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (target != TARGET_IGNORE).any():
            # A batch of ignored pixels only (e.g. crops of padding): the mean over none would be NaN.
            return logits.sum() * 0.0
        # Logits may come in bf16/fp16 under autocast; the log-softmax is more accurate in fp32.
        return super().forward(logits.float(), target)
