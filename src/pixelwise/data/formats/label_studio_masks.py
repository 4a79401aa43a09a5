"""Painting the regions of one Label Studio annotation into class ids (the reader of ``label-studio``).

Kept apart from :mod:`pixelwise.data.formats.label_studio`, which reads the export and picks one
annotation per task; this module is what runs per sample in the DataLoader workers. A region is

* a brush region (``brushlabels``): Label Studio's RLE of the RGBA canvas, decoded by
  :mod:`pixelwise.data.ls_rle` (a pixel is in the region where its alpha is above 128);
* a polygon (``polygonlabels``): ``value.points`` in percent of the image's width and height, scaled to
  pixels and filled by pycocotools, the rasteriser COCO polygons are filled with (both put ``x = 0`` at
  the image's left edge, so a vertex at 25% of a 4-pixel-wide image lies between pixels 0 and 1).

Regions are painted in the order of the annotation's ``result`` list, so a later region is drawn over an
earlier one where they overlap (Label Studio lists them in the order they were drawn). Pixels no region
covers are class 0, the background.

>>> region = Region(1, "polygon", [[0.0, 0.0], [50.0, 0.0], [50.0, 100.0], [0.0, 100.0]], 2, 4)
>>> paint([region], 2, 4, "task 1").tolist()
[[1, 1, 0, 0], [1, 1, 0, 0]]
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats.coco_masks import mask_api
from pixelwise.data.ls_rle import decode_brush
from pixelwise.data.sample import Sample, SampleReader


class Region(NamedTuple):
    """One region of an annotation: its class id, ``"brush"`` (RLE bytes) or ``"polygon"`` (points in
    percent), and the image size it was drawn on (``original_height`` / ``original_width``, None if absent)."""

    class_id: int
    kind: str
    data: Any
    height: int | None
    width: int | None


def _polygon(points: Any, height: int, width: int, where: str) -> np.ndarray:
    """The pixels inside a polygon given in percent of the image size."""
    try:
        xy = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        xy = np.zeros((0,))
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all() or np.abs(xy).max(initial=0) > 1e4:
        raise DataError(f"{where}: polygon points must be [[x, y], ...] in percent of the image size; fix or "
                        "remove the region")
    if len(xy) < 3:
        return np.zeros((height, width), bool)  # a line or a point covers no pixel
    flat = (xy * [width / 100.0, height / 100.0]).ravel().tolist()
    api = mask_api()
    with warnings.catch_warnings():  # pycocotools 2.0.11 under numpy 2 warns on every decode
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return api.decode(api.merge(api.frPyObjects([flat], height, width))).astype(bool)


def paint(regions: list[Region], height: int, width: int, where: str) -> np.ndarray:
    """``(height, width)`` uint8 class ids: the regions painted in order over background (0)."""
    ids = np.zeros((height, width), np.uint8)
    for n, region in enumerate(regions, start=1):
        at = f"{where}, region {n}"
        if (region.height, region.width) not in ((height, width), (None, None)):
            raise DataError(f"{at}: drawn on a {region.width}x{region.height} image (original_width x "
                            f"original_height) but the image file is {width}x{height}; use the image that was "
                            "labelled")
        if region.kind == "brush":
            inside = decode_brush(region.data, height, width, at)
        else:
            inside = _polygon(region.data, height, width, at)
        ids[inside] = region.class_id
    return ids


class LabelStudioReader(SampleReader):
    """Class ids painted from the chosen annotation of the sample's task.

    ``records[image path]`` is ``(where, regions)``: plain tuples and bytes, so the reader pickles for
    DataLoader workers; ``sample.mask`` is the export's JSON file.
    """

    def __init__(self, classes: ClassSpec, records: dict[str, tuple[str, list[Region]]]) -> None:
        super().__init__(classes)
        self.records = records

    def read_ids(self, sample: Sample) -> np.ndarray:
        try:
            where, regions = self.records[str(sample.image)]
        except KeyError:
            raise DataError(f"{sample.image}: not an image of {sample.mask}") from None
        height, width = self.image_size(sample)
        return paint(regions, height, width, where)
