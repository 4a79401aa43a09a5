"""Augmentation (albumentations) and normalisation.

Transforms work on uint8 images; normalisation with the ImageNet mean/std happens on the batch,
on the training device (:func:`normalize`), which keeps worker-to-trainer transfers 4x smaller.

>>> import numpy as np
>>> t = train_transform((64, 64), AugmentOptions())
>>> out = t(image=np.zeros((100, 120, 3), np.uint8), mask=np.zeros((100, 120), np.uint8))
>>> out["image"].shape, out["mask"].shape
((64, 64, 3), (64, 64))
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
import torch
from pydantic import BaseModel, ConfigDict, Field

from pixelwise.core.constants import MASK_IGNORE

# Masks inside the pipeline are uint8 with this value for "ignore" (padding included).


class AugmentOptions(BaseModel):
    """Training augmentation; every part can be switched off in a recipe."""

    model_config = ConfigDict(extra="forbid")
    scale: tuple[float, float] = (0.75, 1.5)  # random zoom range before cropping back to the training size
    hflip: bool = True
    color_jitter: float = Field(0.2, ge=0, le=1)  # brightness/contrast/saturation strength; 0 = off
    noise: float = Field(0.03, ge=0, le=1)  # max std of Gaussian noise as a fraction of 255; 0 = off


def train_transform(size: tuple[int, int] | None, options: AugmentOptions,
                    crop: tuple[int, int] | None = None) -> A.Compose:
    """Resize to the training size (``None``: keep the image's own), random scale, pad/crop to ``crop`` (or back
    to the training size), flip, colour jitter, noise.

    >>> t = train_transform(None, AugmentOptions(scale=(1.0, 1.0)), crop=(32, 48))
    >>> t(image=np.zeros((100, 120, 3), np.uint8), mask=np.zeros((100, 120), np.uint8))["image"].shape
    (32, 48, 3)
    """
    if size is None and crop is None:
        raise ValueError("train_transform needs a size, a crop, or both")
    h, w = crop or size  # type: ignore[misc]
    lo, hi = options.scale
    steps: list[A.BasicTransform] = [A.Resize(*size, interpolation=cv2.INTER_LINEAR)] if size else []
    if (lo, hi) != (1.0, 1.0):
        steps.append(A.RandomScale(scale_limit=(lo - 1, hi - 1), p=1.0))
    if (lo, hi) != (1.0, 1.0) or crop is not None:
        steps += [
            # Padding appears when zoomed out (or an image is smaller than the crop); it is "ignore" so it
            # teaches the model nothing false.
            A.PadIfNeeded(h, w, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=MASK_IGNORE),
            A.RandomCrop(h, w),
        ]
    if options.hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if options.color_jitter > 0:
        j = options.color_jitter
        steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 4, 0.5), p=0.8))
    if options.noise > 0:
        steps.append(A.GaussNoise(std_range=(0.0, options.noise), p=0.5))
    return A.Compose(steps)


def eval_transform(size: tuple[int, int] | None) -> A.Compose:
    """Resize the image only: evaluation scores predictions at the mask's own resolution."""
    return A.Compose([A.Resize(*size, interpolation=cv2.INTER_LINEAR)] if size else [])


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` to float: ``(x / 255 - mean) / std`` per channel."""
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1) * 255
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1) * 255
    return (images.float() - mean_t) / std_t
