"""``lovasz``: the Lovász-softmax loss (Berman, Triki, Blaschko, CVPR 2018), a smooth surrogate of the IoU.

Cross-entropy counts pixels, so a thin class (a pole a few pixels wide) weighs little however badly it is
segmented; the IoU counts each class once. Lovász-softmax optimises the per-class Jaccard loss directly:
each class's pixel errors, sorted from worst to best, are weighted by how much each one changes the IoU
(the Lovász extension of the Jaccard loss, exact for binary predictions). Usually added to CE
(``--loss ce+lovasz``) because alone it learns slowly from random init.

>>> import torch
>>> target = torch.tensor([[[0, 1], [1, 1]]])
>>> perfect = torch.tensor([[[[9.0, -9.0], [-9.0, -9.0]], [[-9.0, 9.0], [9.0, 9.0]]]])
>>> round(float(LovaszSoftmaxLoss()(perfect, target)), 3)
0.0
>>> round(float(LovaszSoftmaxLoss()(-perfect, target)), 3)  # every pixel wrong: the IoU loss is 1
1.0
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses.base import register_loss


def lovasz_grad(truth_sorted: torch.Tensor) -> torch.Tensor:
    """The Jaccard loss's increments along the pixels sorted by error: the weight of each sorted error.
    ``truth_sorted`` is ``(classes, pixels)``: one row per class, 1 where the pixel is of that class."""
    total = truth_sorted.sum(dim=1, keepdim=True)
    intersection = total - truth_sorted.cumsum(dim=1)
    union = total + (1 - truth_sorted).cumsum(dim=1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)


@register_loss("lovasz")
class LovaszSoftmaxLoss(nn.Module):
    """Lovász-softmax over the batch's valid pixels, averaged over the classes present in the truth."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        probs = logits.float().softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)
        labels = target.reshape(-1)
        valid = labels != TARGET_IGNORE
        probs, labels = probs[valid], labels[valid]
        present = torch.bincount(labels, minlength=num_classes).nonzero().squeeze(1)
        if present.numel() == 0:  # nothing valid in the batch: no gradient, no NaN
            return logits.sum() * 0.0
        # All present classes at once, one row each: one batched sort is 1.7x faster on a CPU than a loop of
        # per-class sorts (0.37 vs 0.63 s for a batch of 8 at 240x320, 11 classes), and the sort is the cost.
        truth = labels.unsqueeze(0) == present.unsqueeze(1)
        errors = (truth.float() - probs[:, present].t()).abs()
        errors_sorted, order = errors.sort(dim=1, descending=True)
        weights = lovasz_grad(truth.gather(1, order).float())
        return (errors_sorted * weights).sum(dim=1).mean()
