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
from pixelwise.data.sample import Sample, SampleReader, check_same_size


def _count(sample: Sample, reader: SampleReader) -> np.ndarray:
    num_classes = reader.classes.num_classes
    height, width = reader.image_size(sample)
    if sample.mask is None:
        return np.zeros(num_classes + 1, np.int64)
    ids = reader.read_ids(sample)
    check_same_size(sample, ids.shape, (height, width))
    counts = np.bincount(ids.ravel(), minlength=256)
    return np.concatenate([counts[:num_classes], counts[255:256]])


def scan_samples(samples: Sequence[Sample], spec: ClassSpec, workers: int = 4,
                 reader: SampleReader | None = None) -> np.ndarray:
    """Check every sample; returns pixel counts per class with the ignored pixels last."""
    reader = reader or SampleReader(spec)
    total = np.zeros(spec.num_classes + 1, np.int64)
    # Decoding releases the GIL, so threads overlap the PNG work.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for counts in pool.map(lambda s: _count(s, reader), samples):
            total += counts
    return total
