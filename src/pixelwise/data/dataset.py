"""A PyTorch dataset over the samples of a split.

Each item is ``{"image": uint8 (3, H, W), "mask": int64 (H, W), "index": int}``; in the mask, the
dataset's ignore index (and augmentation padding) becomes ``-1``. Mask values that are neither a class
nor the ignore index are an error naming the file, never silently clipped.

Augmentation is seeded per (seed, epoch, index), so an epoch's batches are the same whichever worker
loads them, and a resumed run sees exactly the data it would have seen.

>>> import numpy as np
>>> from pixelwise.data.classes import get_preset
>>> to_class_ids(np.array([[0, 11]], np.uint8), get_preset("camvid"), "m.png").tolist()
[[0, 255]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import Sample
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.transforms import MASK_IGNORE
from pixelwise.errors import DataError

_UNKNOWN = 256


def class_lookup(spec: ClassSpec) -> np.ndarray:
    """A table from stored mask value (0..65535) to class id, 255 = ignore, 256 = unknown value."""
    lut = np.full(65536, _UNKNOWN, np.uint16)
    lut[: spec.num_classes] = np.arange(spec.num_classes)
    if spec.ignore_index is not None:
        lut[spec.ignore_index] = MASK_IGNORE
    return lut


def to_class_ids(mask: np.ndarray, spec: ClassSpec, path: str | Path, lut: np.ndarray | None = None) -> np.ndarray:
    """Stored mask values to uint8 class ids (255 = ignore); unknown values raise naming the file."""
    if mask.dtype.kind not in "ui" or (mask.size and (mask.min() < 0 or mask.max() > 65535)):
        raise DataError(f"{path}: mask values must be integers 0..65535, found dtype {mask.dtype}")
    lut = class_lookup(spec) if lut is None else lut
    ids = lut[mask]
    bad = ids == _UNKNOWN
    if bad.any():
        values = np.unique(mask[bad])
        ignore = f" or the ignore index {spec.ignore_index}" if spec.ignore_index is not None else ""
        raise DataError(f"{path}: mask value {int(values[0])} ({bad.sum()} pixels"
                        f"{', values ' + str(values[:5].tolist()) if len(values) > 1 else ''}) is neither a "
                        f"class 0..{spec.num_classes - 1}{ignore}; fix the mask or classes.yaml (ignore_index)")
    return ids.astype(np.uint8)


def load_pair(sample: Sample, spec: ClassSpec, lut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 and its class-id mask (H, W) uint8, checked to match."""
    image = read_image(sample.image)
    if sample.mask is None:
        raise DataError(f"{sample.image}: has no mask; labelled data is needed here")
    mask = read_mask(sample.mask)
    if mask.shape != image.shape[:2]:
        raise DataError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                        f"{image.shape[1]}x{image.shape[0]} (WxH); masks must match their images")
    return image, to_class_ids(mask, spec, sample.mask, lut)


class SegmentationDataset(Dataset):
    def __init__(self, samples: Sequence[Sample], classes: ClassSpec, transform: A.Compose, seed: int = 0,
                 augment: bool = True) -> None:
        self.samples = list(samples)
        self.classes = classes
        self.transform = transform
        self.seed = seed
        self.augment = augment
        self.epoch = 0
        self.lut = class_lookup(classes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        image, mask = load_pair(self.samples[index], self.classes, self.lut)
        if self.augment:
            self.transform.set_random_seed(self.seed * 1_000_003 + self.epoch * 100_003 + index)
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        else:  # evaluation: resize the image only, keep the mask at full resolution
            image = self.transform(image=image)["image"]
        target = torch.from_numpy(mask.astype(np.int64))
        target[target == MASK_IGNORE] = -1
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "mask": target,
                "index": index}


def collate_padded(batch: list[dict]) -> dict[str, torch.Tensor]:
    """Stack a batch whose images or masks differ in size: pad images with 0 and masks with -1,
    and keep each item's true sizes so predictions can be cropped back."""
    images, masks = [b["image"] for b in batch], [b["mask"] for b in batch]
    ih, iw = max(i.shape[1] for i in images), max(i.shape[2] for i in images)
    mh, mw = max(m.shape[0] for m in masks), max(m.shape[1] for m in masks)
    out_images = torch.zeros((len(batch), 3, ih, iw), dtype=torch.uint8)
    out_masks = torch.full((len(batch), mh, mw), -1, dtype=torch.int64)
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
