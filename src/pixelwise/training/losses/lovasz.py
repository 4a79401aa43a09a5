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
    """The Jaccard loss's increments along the pixels sorted by error: the weight of each sorted error."""
    total = truth_sorted.sum()
    intersection = total - truth_sorted.cumsum(0)
    union = total + (1 - truth_sorted).cumsum(0)
    jaccard = 1 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


@register_loss("lovasz")
class LovaszSoftmaxLoss(nn.Module):
    """Lovász-softmax over the batch's valid pixels, averaged over the classes present in the truth."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        probs = logits.float().softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)
        labels = target.reshape(-1)
        valid = labels != TARGET_IGNORE
        probs, labels = probs[valid], labels[valid]
        losses = []
        for c in labels.unique().tolist():
            truth = (labels == c).float()
            errors = (truth - probs[:, c]).abs()
            errors_sorted, order = errors.sort(descending=True)
            losses.append(torch.dot(errors_sorted, lovasz_grad(truth[order])))
        if not losses:  # nothing valid in the batch: no gradient, no NaN
            return logits.sum() * 0.0
        return torch.stack(losses).mean()
