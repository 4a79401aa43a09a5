"""What every segmentation model shares: output geometry.

>>> import torch
>>> logits_at_size(torch.zeros(2, 10, 12), image_size=(8, 9), out_size=(16, 18)).shape
torch.Size([2, 16, 18])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def logits_at_size(logits: torch.Tensor, image_size: Sequence[int], out_size: Sequence[int]) -> torch.Tensor:
    """Crop one item's ``(C, H, W)`` logits to its unpadded image size, then resize to ``out_size``."""
    logits = logits[:, : int(image_size[0]), : int(image_size[1])]
    if tuple(logits.shape[-2:]) != tuple(int(s) for s in out_size):
        logits = F.interpolate(logits[None].float(), size=tuple(int(s) for s in out_size), mode="bilinear",
                               align_corners=False)[0]
    return logits
