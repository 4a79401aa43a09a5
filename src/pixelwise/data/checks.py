"""Cheap checks run before training, so a bad file fails in seconds, not an hour into a run.

Every mask is decoded (masks are small, single-channel PNGs) and checked against its image's size,
read from the image header only; unknown mask values and unreadable files raise a
:class:`~pixelwise.errors.DataError` naming the file. The per-class pixel counts come for free.

>>> from pixelwise.data.classes import get_preset
>>> scan_samples([], get_preset("binary")).tolist()
[0, 0, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.data.dataset import class_lookup, to_class_ids
from pixelwise.data.formats import Sample
from pixelwise.data.io import image_size, read_mask
from pixelwise.errors import DataError


def _count(sample: Sample, spec: ClassSpec, lut: np.ndarray) -> np.ndarray:
    height, width = image_size(sample.image)
    if sample.mask is None:
        return np.zeros(spec.num_classes + 1, np.int64)
    mask = read_mask(sample.mask)
    if mask.shape != (height, width):
        raise DataError(f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                        f"{width}x{height} (WxH); masks must match their images")
    ids = to_class_ids(mask, spec, sample.mask, lut)
    counts = np.bincount(ids.ravel(), minlength=256)
    return np.concatenate([counts[: spec.num_classes], counts[255:256]])


def scan_samples(samples: Sequence[Sample], spec: ClassSpec, workers: int = 4) -> np.ndarray:
    """Check every sample; returns pixel counts per class with the ignored pixels last."""
    lut = class_lookup(spec)
    total = np.zeros(spec.num_classes + 1, np.int64)
    # Decoding releases the GIL, so threads overlap the PNG work.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for counts in pool.map(lambda s: _count(s, spec, lut), samples):
            total += counts
    return total
