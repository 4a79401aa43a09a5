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
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from pixelwise.core.constants import MASK_IGNORE

if TYPE_CHECKING:
    import albumentations as A

# albumentations is imported by the functions that build pipelines, not here: its import took a fifth of a
# one-image `pixelwise predict`, which resizes with resize_image alone.

# Masks inside the pipeline are uint8 with this value for "ignore" (padding included).


class AugmentOptions(BaseModel):
    """Training augmentation; every part can be switched off in a recipe."""

    model_config = ConfigDict(extra="forbid")
    scale: tuple[float, float] = (0.75, 1.5)  # random zoom range before cropping back to the training size
    hflip: bool = True
    color_jitter: float = Field(0.2, ge=0, le=1)  # brightness/contrast/saturation strength; 0 = off
    noise: float = Field(0.03, ge=0, le=1)  # max std of Gaussian noise as a fraction of 255; 0 = off
    # The share of training crops that contain a pixel of a rare class (nnU-Net oversamples foreground so):
    # a pole or a bicyclist then shows up in many more crops than its pixel share alone would give it.
    rare_class_crops: float = Field(0.0, ge=0, lt=1)


def train_transform(size: tuple[int, int] | None, options: AugmentOptions, crop: tuple[int, int] | None = None,
                    rare_classes: Sequence[int] = ()) -> A.Compose:
    """Resize to the training size (``None``: keep the image's own), random scale, pad/crop to ``crop`` (or back
    to the training size), flip, colour jitter, noise. With ``options.rare_class_crops`` that share of the
    crops is placed around a random pixel of the ``rare_classes`` (where the image has any).

    >>> import numpy as np
    >>> t = train_transform(None, AugmentOptions(scale=(1.0, 1.0)), crop=(32, 48))
    >>> t(image=np.zeros((100, 120, 3), np.uint8), mask=np.zeros((100, 120), np.uint8))["image"].shape
    (32, 48, 3)
    """
    import albumentations as A  # here: see the note at the top

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
            _crop(h, w, options.rare_class_crops, rare_classes),
        ]
    if options.hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if options.color_jitter > 0:
        j = options.color_jitter
        steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 4, 0.5), p=0.8))
    if options.noise > 0:
        steps.append(A.GaussNoise(std_range=(0.0, options.noise), p=0.5))
    return A.Compose(steps)


def _crop(h: int, w: int, rare_share: float, rare_classes: Sequence[int]) -> A.BasicTransform:
    """A random crop; or, ``rare_share`` of the time, one around a random pixel of a rare class."""
    import albumentations as A  # here: see the note at the top

    if rare_share <= 0 or not rare_classes:
        return A.RandomCrop(h, w)
    # Every mask value but the rare classes counts as "empty", so the crop is placed around a rare pixel
    # (albumentations falls back to a plain random crop when the mask shows none).
    common = [v for v in range(MASK_IGNORE + 1) if v not in set(rare_classes)]
    return A.OneOf([A.RandomCrop(h, w, p=1 - rare_share),
                    A.CropNonEmptyMaskIfExists(h, w, ignore_values=common, p=rare_share)], p=1.0)


def rare_classes(pixel_shares: Sequence[float]) -> list[int]:
    """Classes with less than half the pixels they would have if all classes were equal (CamVid: pole, sign,
    fence, pedestrian, bicyclist). Classes absent from the data are left out: no crop can show them.

    >>> rare_classes([0.6, 0.3, 0.08, 0.02, 0.0])
    [2, 3]
    """
    n = len(pixel_shares)
    return [c for c, share in enumerate(pixel_shares) if 0 < share < 0.5 / n]


def eval_transform(size: tuple[int, int] | None) -> A.Compose:
    """Resize the image only: evaluation scores predictions at the mask's own resolution."""
    import albumentations as A  # here: see the note at the top

    return A.Compose([A.Resize(*size, interpolation=cv2.INTER_LINEAR)] if size else [])


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` resized to ``size`` = (height, width) as :func:`eval_transform` resizes it: the same OpenCV call
    (albumentations' Resize calls ``cv2.resize`` so, and returns an image of that size as it is), without
    importing albumentations. ``None``: the image as it is.

    >>> resize_image(np.zeros((100, 120, 3), np.uint8), (64, 96)).shape
    (64, 96, 3)
    """
    if size is None or tuple(size) == image.shape[:2]:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` to float: ``(x / 255 - mean) / std`` per channel.

    In place on the new float copy: the same values as ``(x.float() - mean) / std``, but PyTorch's out-of-place
    division by a broadcast ``(1, 3, 1, 1)`` tensor took 10.4 ms for 4 images at 352x480 on one core, in place
    0.5 ms (torch 2.14, AMD EPYC).

    >>> normalize(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8), [0.5] * 3, [0.5] * 3).flatten().tolist()
    [1.0, 1.0, 1.0]
    """
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1) * 255
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1) * 255
    return images.to(torch.float32, copy=True).sub_(mean_t).div_(std_t)  # copy: never the caller's tensor
