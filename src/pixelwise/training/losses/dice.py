"""``dice``: soft multiclass Dice over the batch.

>>> import torch
>>> target = torch.zeros(1, 4, 4, dtype=torch.long)
>>> round(float(DiceLoss()(torch.zeros(1, 2, 4, 4), target)), 4)  # 1 - (2 * 8 + 1) / (8 + 16 + 1)
0.32
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses.base import register_loss


@register_loss("dice")
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
