"""Segmentation losses, built by name: ``ce``, ``dice``, or a sum such as ``ce+dice``.

Targets are ``(N, H, W)`` int64 class ids in which ``TARGET_IGNORE`` (-1) marks pixels that count nowhere.

>>> import torch
>>> loss = build_loss("ce+dice", num_classes=3)
>>> logits, target = torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
>>> round(float(loss(logits, target)), 3) > 0
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.core.errors import ConfigError


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """Cross-entropy with optional class weights; ignored pixels do not count."""

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        super().__init__(weight=weight, ignore_index=TARGET_IGNORE)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), target)


class DiceLoss(nn.Module):
    """Soft multiclass Dice: ``1 - mean_c 2|P_c . T_c| / (|P_c| + |T_c|)`` over the batch.

    Sums run over the whole batch (not per image) so a class missing from one image does not give a
    0/0 term. Only classes present in the batch's truth enter the mean (a class that is only
    predicted still lowers the others' scores through the softmax).
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        probs = logits.float().softmax(dim=1)
        valid = (target != TARGET_IGNORE).unsqueeze(1)
        onehot = F.one_hot(target.clamp(min=0), num_classes).permute(0, 3, 1, 2).to(probs.dtype)
        probs, onehot = probs * valid, onehot * valid
        dims = (0, 2, 3)
        intersection = (probs * onehot).sum(dims)
        cardinality = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth)
        present = onehot.sum(dims) > 0
        return 1 - (dice[present].mean() if present.any() else dice.mean())


class SumLoss(nn.Module):
    def __init__(self, losses: list[nn.Module]) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(loss(logits, target) for loss in self.losses)


LOSSES = {"ce": CrossEntropyLoss, "dice": DiceLoss}


def build_loss(name: str, num_classes: int, class_weights: Sequence[float] | None = None) -> nn.Module:
    """``name`` is one loss or several joined by ``+`` (their sum)."""
    parts = [p.strip() for p in name.split("+")]
    for p in parts:
        if p not in LOSSES:
            raise ConfigError(f"unknown loss '{p}'; choose from {', '.join(LOSSES)} or a sum like ce+dice")
    if class_weights is not None and len(class_weights) != num_classes:
        raise ConfigError(f"class_weights has {len(class_weights)} values for {num_classes} classes")
    losses = [CrossEntropyLoss(class_weights) if p == "ce" else LOSSES[p]() for p in parts]
    return losses[0] if len(losses) == 1 else SumLoss(losses)
