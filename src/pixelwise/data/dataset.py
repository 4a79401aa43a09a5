"""A PyTorch dataset over the samples of a split.

Each item is ``{"image": uint8 (3, H, W), "mask": int64 (H, W), "index": int}``; in the mask, the
dataset's ignore index (and augmentation padding) becomes ``-1``. Mask values that are neither a class
nor the ignore index are an error naming the file, never silently clipped.

Augmentation is seeded per (seed, epoch, index), so an epoch's batches are the same whichever worker
loads them, and a resumed run sees exactly the data it would have seen.

>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.data.transforms import eval_transform
>>> len(SegmentationDataset([], get_preset("camvid"), eval_transform(None), augment=False))
0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelwise.core.constants import MASK_IGNORE, TARGET_IGNORE
from pixelwise.data.classes import ClassSpec
from pixelwise.data.sample import (  # noqa: F401  (re-exported: the dataset API)
    Sample,
    SampleReader,
    check_same_size,
    class_lookup,
    load_pair,
    to_class_ids,
)

if TYPE_CHECKING:  # albumentations' import is slow; only the annotation names it here
    import albumentations as A


class SegmentationDataset(Dataset):
    def __init__(self, samples: Sequence[Sample], classes: ClassSpec, transform: A.Compose, seed: int = 0,
                 augment: bool = True, reader: SampleReader | None = None) -> None:
        self.samples = list(samples)
        self.classes = classes
        self.transform = transform
        self.seed = seed
        self.augment = augment
        self.epoch = 0
        self.reader = reader or SampleReader(classes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        image, mask = self.reader.load(self.samples[index])
        if self.augment:
            self.transform.set_random_seed(self.seed * 1_000_003 + self.epoch * 100_003 + index)
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        else:  # evaluation: resize the image only, keep the mask at full resolution
            image = self.transform(image=image)["image"]
        target = torch.from_numpy(mask.astype(np.int64))
        target[target == MASK_IGNORE] = TARGET_IGNORE
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "mask": target,
                "index": index}


def collate_padded(batch: list[dict]) -> dict[str, torch.Tensor]:
    """Stack a batch whose images or masks differ in size: pad images with 0 and masks with -1,
    and keep each item's true sizes so predictions can be cropped back."""
    images, masks = [b["image"] for b in batch], [b["mask"] for b in batch]
    ih, iw = max(i.shape[1] for i in images), max(i.shape[2] for i in images)
    mh, mw = max(m.shape[0] for m in masks), max(m.shape[1] for m in masks)
    out_images = torch.zeros((len(batch), 3, ih, iw), dtype=torch.uint8)
    out_masks = torch.full((len(batch), mh, mw), TARGET_IGNORE, dtype=torch.int64)
    for k, (image, mask) in enumerate(zip(images, masks, strict=True)):
        out_images[k, :, : image.shape[1], : image.shape[2]] = image
        out_masks[k, : mask.shape[0], : mask.shape[1]] = mask
    return {
        "image": out_images,
        "mask": out_masks,
        "image_size": torch.tensor([i.shape[1:] for i in images]),
        "mask_size": torch.tensor([m.shape for m in masks]),
        "index": torch.tensor([b["index"] for b in batch]),
    }
