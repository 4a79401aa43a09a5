"""Painting the COCO annotations of one image into a semantic mask (the reader of the ``coco`` format).

Kept apart from :mod:`pixelwise.data.formats.coco`, which finds the JSON files and indexes them; this
module is what runs per sample in the DataLoader workers. The overlap rule (larger areas first, crowd
last) is described in that module's docstring.

>>> to_rle(mask_api(), [[0, 0, 4, 0, 4, 4]], 5, 5, "example")["size"]
[5, 5]
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pixelwise.core.constants import MASK_IGNORE
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.sample import Sample, SampleReader, to_class_ids

NEEDS_PYCOCOTOOLS = "the coco format needs pycocotools: pip install 'pixelwise[coco]'"

# One annotation as kept in the reader: (class value, iscrowd, area or None, tie-break id, segmentation).
Annotation = tuple[int, bool, float | None, int, Any]
# One image: (image id, height, width, annotations).
Record = tuple[Any, int, int, list[Annotation]]


def mask_api():
    """``pycocotools.mask``, imported on first use (an optional dependency)."""
    try:
        from pycocotools import mask
    except ImportError:
        raise ConfigError(NEEDS_PYCOCOTOOLS) from None
    return mask


class CocoReader(SampleReader):
    """Semantic masks painted from the COCO annotations of the sample's image (see the module docstring).

    ``records[json][image]`` holds plain lists and tuples of the JSON's own values, so the reader pickles
    for DataLoader workers; ``sample.mask`` is the JSON file.
    """

    def __init__(self, classes: ClassSpec, records: dict[str, dict[str, Record]], crowd: str = "ignore") -> None:
        super().__init__(classes)
        self.records = records
        self.crowd = crowd

    def read_ids(self, sample: Sample) -> np.ndarray:
        api = mask_api()
        try:
            image_id, height, width, anns = self.records[str(sample.mask)][str(sample.image)]
        except KeyError:
            raise DataError(f"{sample.image}: not an image of {sample.mask}") from None
        real = self.image_size(sample)
        if real != (height, width):
            raise DataError(f"{sample.mask}: image {image_id!r} is {width}x{height} (WxH) in the JSON but "
                            f"{sample.image} is {real[1]}x{real[0]}; fix width/height in the JSON or the image")
        where = f"{sample.mask} (image {image_id!r})"
        rles = []
        for value, crowd, area, tie, segmentation in anns:
            rle = to_rle(api, segmentation, height, width, f"{sample.mask}: annotation {tie}")
            if rle is not None:
                size = area if area is not None else float(api.area(rle))
                rles.append(((crowd, -size, tie), value, crowd, rle))
        rles.sort(key=lambda r: r[0])
        label = np.zeros((height, width), np.uint16)
        ignore = np.zeros((height, width), bool)
        for (_, _, tie), value, crowd, rle in rles:
            with warnings.catch_warnings():  # pycocotools 2.0.11 under numpy 2 warns on every decode
                warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
                try:
                    region = api.decode(rle).astype(bool)
                except ValueError:  # counts that do not add up to height x width (a hostile or broken file)
                    raise DataError(f"{sample.mask}: annotation {tie}: its RLE does not cover the {width}x{height} "
                                    "image exactly (corrupt counts); fix or remove the annotation") from None
            if crowd and self.crowd == "ignore":
                ignore |= region
            else:
                label[region] = value
        ids = to_class_ids(label, self.classes, where, self.lut)
        ids[ignore] = MASK_IGNORE
        return ids


def _coordinate(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e7  # False for NaN


def to_rle(api, segmentation: Any, height: int, width: int, where: str) -> dict | None:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as one compressed RLE; None if empty.

    Polygons of fewer than three points cover nothing and are dropped (pycocotools would read a
    4-number polygon as a box).
    """
    try:
        if isinstance(segmentation, list):
            if not all(isinstance(p, list) for p in segmentation):
                raise DataError(f"{where}: segmentation is a list but not of polygons ([x1, y1, x2, y2, ...])")
            polygons = [p for p in segmentation if len(p) >= 6]
            if not all(_coordinate(v) for p in polygons for v in p):
                # pycocotools' C rasteriser crashes the process (SIGSEGV) on NaN, inf or huge coordinates.
                raise DataError(f"{where}: a polygon coordinate is not a finite number of pixels (NaN, inf, text "
                                "or beyond 10^7); fix or remove the annotation")
            return api.merge(api.frPyObjects(polygons, height, width)) if polygons else None
        if isinstance(segmentation, dict) and "counts" in segmentation:
            size = segmentation.get("size")
            if not isinstance(size, list) or [int(v) for v in size] != [height, width]:
                raise DataError(f"{where}: RLE size {size} does not match the image's [height, width] "
                                f"[{height}, {width}]")
            counts = segmentation["counts"]
            if isinstance(counts, list):
                return api.frPyObjects({"size": [height, width], "counts": counts}, height, width)
            if isinstance(counts, str | bytes):
                rle = {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
                api.area(rle)  # validates the string
                return rle
    except (ValueError, TypeError, IndexError, OverflowError) as e:  # OverflowError: negative RLE counts
        raise DataError(f"{where}: cannot decode the segmentation ({e})") from None
    raise DataError(f"{where}: segmentation is neither polygons nor an RLE object with size and counts")
