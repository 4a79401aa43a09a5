"""Cheap checks run before training, so a bad file fails in seconds, not an hour into a run.

Every mask is decoded (masks are small, single-channel PNGs) and checked against its image's size,
read from the image header only; unknown mask values and unreadable files raise a
:class:`~pixelwise.core.errors.DataError` naming the file. The statistics come for free: pixels per class,
image sizes, and the class frequencies that median-frequency balancing needs.

>>> from pixelwise.data.presets import get_preset
>>> scan_samples([], get_preset("binary")).tolist()
[0, 0, 0]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.sample import Sample, SampleReader, check_same_size


@dataclass
class ScanResult:
    """What a scan of a split found."""

    class_pixels: np.ndarray  # (num_classes + 1,): pixels per class, the ignored pixels last
    present_pixels: np.ndarray  # (num_classes,): total pixels of the images in which each class occurs
    images_with_class: np.ndarray  # (num_classes,): number of images in which each class occurs
    sizes: Counter = field(default_factory=Counter)  # (height, width) -> number of images
    problems: list[str] = field(default_factory=list)  # one line per bad file (collect mode only)

    @property
    def shares(self) -> np.ndarray:
        """Fraction of all labelled-or-ignored pixels per class (ignored last)."""
        total = self.class_pixels.sum()
        return self.class_pixels / total if total else self.class_pixels.astype(float)


def _scan_one(sample: Sample, reader: SampleReader) -> tuple[tuple[int, int], np.ndarray | None]:
    height, width = reader.image_size(sample)
    if sample.mask is None:
        return (height, width), None
    ids = reader.read_ids(sample)
    check_same_size(sample, ids.shape, (height, width))
    counts = np.bincount(ids.ravel(), minlength=256)
    return (height, width), np.concatenate([counts[: reader.classes.num_classes], counts[255:256]])


def scan_dataset(samples: Sequence[Sample], spec: ClassSpec, workers: int = 4, reader: SampleReader | None = None,
                 collect: bool = False) -> ScanResult:
    """Check every sample and gather statistics. ``collect=True`` records bad files in ``problems``
    instead of raising at the first one (``datasets inspect`` wants them all)."""
    reader = reader or SampleReader(spec)
    k = spec.num_classes
    result = ScanResult(np.zeros(k + 1, np.int64), np.zeros(k, np.int64), np.zeros(k, np.int64))

    def scan(sample: Sample) -> tuple[tuple[int, int], np.ndarray | None] | str:
        try:
            return _scan_one(sample, reader)
        except DataError as e:
            if not collect:
                raise
            return str(e)

    # Decoding releases the GIL, so threads overlap the PNG work.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for outcome in pool.map(scan, samples):
            if isinstance(outcome, str):
                result.problems.append(outcome)
                continue
            size, counts = outcome
            result.sizes[size] += 1
            if counts is not None:
                result.class_pixels += counts
                present = counts[:k] > 0
                result.present_pixels[present] += size[0] * size[1]
                result.images_with_class += present
    return result


def scan_samples(samples: Sequence[Sample], spec: ClassSpec, workers: int = 4,
                 reader: SampleReader | None = None) -> np.ndarray:
    """Check every sample; returns pixel counts per class with the ignored pixels last."""
    return scan_dataset(samples, spec, workers, reader).class_pixels


def class_weights(scan: ScanResult, method: str = "median") -> list[float]:
    """Loss weights from class frequencies.

    ``median``: median-frequency balancing (Eigen & Fergus; SegNet): ``freq_c`` = pixels of class c
    / pixels of the images in which c occurs, weight = median(freq) / freq_c. ``inverse``: weight
    proportional to 1 / (share of class c), scaled to average 1. Classes that never occur get weight 0
    (they cannot contribute to the loss anyway, and a huge weight would be meaningless).
    """
    pixels = scan.class_pixels[:-1].astype(np.float64)
    present = pixels > 0
    if not present.any():
        raise DataError("cannot compute class weights: no labelled pixels in the training split")
    weights = np.zeros_like(pixels)
    if method == "median":
        freq = pixels[present] / scan.present_pixels[present]
        weights[present] = np.median(freq) / freq
    elif method == "inverse":
        inverse = pixels[present].sum() / pixels[present]
        weights[present] = inverse / inverse.mean()
    else:
        raise ValueError(f"unknown class-weight method '{method}'")
    return [round(float(w), 6) for w in weights]
