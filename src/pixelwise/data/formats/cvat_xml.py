"""CVAT for images 1.1 XML (``annotations.xml``): parsed once, painted per sample (the reader of ``cvat``).

Kept apart from :mod:`pixelwise.data.formats.cvat`, which finds the export's files and splits; this module
reads the XML and is what runs per sample in the DataLoader workers.

What the XML holds (CVAT 2.x, ``cvat/apps/dataset_manager/formats/cvat.py``): ``<meta>`` lists the labels
(``<task>``, ``<job>`` or ``<project>`` ``<labels><label><name>``, ``<color>#rrggbb</color>``), then one
``<image name= width= height=>`` per frame holding its shapes:

* ``<polygon label= points="x1,y1;x2,y2;..." z_order=>``: painted as CVAT paints it in its own
  "Segmentation mask 1.1" export, which rasterises polygons with pycocotools' ``frPyObjects`` (through
  Datumaro); pixelwise calls the same function, so a polygon covers exactly the pixels CVAT's mask export
  gives it (pixel ``(x, y)`` spans ``[x, x+1) x [y, y+1)``: a square ``0,0;4,0;4,4;0,4`` covers 4x4 pixels).
* ``<mask label= rle= left= top= width= height= z_order=>``: CVAT's own run lengths (comma-separated)
  over the ``width`` x ``height`` box at ``(left, top)``, row by row, alternating and starting with a run
  of 0s (a mask whose first pixel is set starts with ``0``). Runs that stop short leave the rest 0; runs
  longer than the box are an error.
* boxes, ellipses, polylines, points, cuboids, skeletons and tags paint nothing (counted in a note).

Shapes are painted in increasing ``z_order`` (ties in document order), so a higher shape covers a lower
one, as in CVAT's canvas and its mask export. Pixels no shape covers are class 0 (``background``).

>>> cvat_rle_encode(np.array([[0, 1, 1], [1, 0, 0]], bool))
[1, 3, 2]
>>> cvat_rle_decode([0, 2, 4], 2, 3, "example").astype(int).tolist()
[[1, 1, 0], [0, 0, 0]]
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats.coco_masks import mask_api, to_rle
from pixelwise.data.sample import Sample, SampleReader

PAINTED = ("polygon", "mask")
UNPAINTED = ("box", "ellipse", "polyline", "points", "cuboid", "skeleton", "tag")

# One shape as kept in the reader: (z_order, position in the image element, kind, class id, geometry).
# Geometry: a polygon's flat [x1, y1, x2, y2, ...]; a mask's (left, top, width, height, run lengths).
Shape = tuple[int, int, str, int, Any]


@dataclass
class XmlImage:
    """One ``<image>`` of the XML: its file name, CVAT subset and size, and its shapes by label name."""

    name: str
    subset: str
    height: int
    width: int
    shapes: list[tuple[int, int, str, str, Any]] = field(default_factory=list)  # label name, not yet its id


@dataclass
class XmlExport:
    """What ``annotations.xml`` holds: labels ``(name, colour or None)`` in meta order, images, skipped shapes."""

    labels: list[tuple[str, tuple[int, int, int] | None]]
    images: list[XmlImage]
    skipped: Counter = field(default_factory=Counter)


def cvat_rle_encode(mask: np.ndarray) -> list[int]:
    """A 2-D boolean mask as CVAT's run lengths: row-major, alternating, starting with a run of 0s."""
    flat = np.asarray(mask, bool).ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


def cvat_rle_decode(runs: list[int] | np.ndarray, height: int, width: int, where: str) -> np.ndarray:
    """CVAT's run lengths over a ``height`` x ``width`` box as a boolean mask (see the module docstring)."""
    runs = np.asarray(runs, np.int64)
    if runs.size and runs.min() < 0:
        raise DataError(f"{where}: the mask's rle has a negative run length ({int(runs.min())}); fix or remove it")
    if runs.sum() > height * width:
        raise DataError(f"{where}: the mask's rle covers {int(runs.sum())} pixels, more than its {width}x{height} "
                        f"box ({height * width}); the rle or the box size is wrong")
    flat = np.repeat(np.arange(runs.size) % 2 == 1, runs)
    return np.pad(flat, (0, height * width - flat.size)).reshape(height, width)


def _int(el: ET.Element, key: str, where: str, low: int = 0) -> int:
    text = el.get(key)
    try:
        value = int(str(text).strip())
    except ValueError:
        raise DataError(f"{where}: {el.tag} {key}={text!r} is not an integer") from None
    if value < low:
        raise DataError(f"{where}: {el.tag} {key}={value} must be at least {low}")
    return value


def _polygon(el: ET.Element, where: str) -> list[float]:
    try:
        points = [float(v) for pair in str(el.get("points", "")).split(";") for v in pair.split(",")]
    except ValueError:
        raise DataError(f"{where}: polygon points {el.get('points')!r} are not 'x1,y1;x2,y2;...'") from None
    if len(points) % 2 or len(points) < 6:
        raise DataError(f"{where}: a polygon needs at least three x,y points, got {el.get('points')!r}")
    return points


def _mask(el: ET.Element, where: str, image: XmlImage) -> tuple[int, int, int, int, np.ndarray]:
    left, top = _int(el, "left", where), _int(el, "top", where)
    width, height = _int(el, "width", where, 1), _int(el, "height", where, 1)
    if left + width > image.width or top + height > image.height:
        raise DataError(f"{where}: the mask's box (left {left}, top {top}, {width}x{height}) reaches outside the "
                        f"{image.width}x{image.height} image")
    try:
        runs = np.array([int(v) for v in str(el.get("rle", "")).split(",") if v.strip()], np.int64)
    except ValueError:
        raise DataError(f"{where}: the mask's rle {str(el.get('rle'))[:40]!r} is not comma-separated "
                        "integers") from None
    cvat_rle_decode(runs, height, width, where)  # check now: a broken file fails when opened, not mid-epoch
    return left, top, width, height, runs.astype(np.int32)


def _image(el: ET.Element, path: Path, skipped: Counter) -> XmlImage:
    name = el.get("name")
    if not name:
        raise DataError(f"{path}: an <image> has no name attribute; CVAT names every image")
    where = f"{path}: image {name!r}"
    image = XmlImage(name, el.get("subset") or "", _int(el, "height", where, 1), _int(el, "width", where, 1))
    for position, child in enumerate(el):
        if child.tag not in PAINTED:
            skipped[child.tag if child.tag in UNPAINTED else "other"] += 1
            continue
        label = child.get("label")
        if not label:
            raise DataError(f"{where}: a {child.tag} has no label attribute")
        z_order = _int(child, "z_order", where, low=-(2**31)) if child.get("z_order") else 0
        geometry = _polygon(child, where) if child.tag == "polygon" else _mask(child, where, image)
        image.shapes.append((z_order, position, child.tag, label, geometry))
    return image


def _color(text: str | None, where: str) -> tuple[int, int, int] | None:
    if not text:
        return None
    value = text.strip().lstrip("#")
    try:
        return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)) if len(value) == 6 else None
    except ValueError:
        raise DataError(f"{where}: label colour {text!r} is not #rrggbb") from None


def _labels(meta: ET.Element, path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """The labels of ``<meta>``: the first of task, job and project that lists any (skeleton points skipped)."""
    for owner in ("task", "job", "project"):
        found = meta.findall(f"./{owner}/labels/label")
        if found:
            break
    labels = []
    for label in found:
        name = (label.findtext("name") or "").strip()
        if name and not (label.findtext("parent") or "").strip():
            labels.append((name, _color(label.findtext("color"), f"{path}: label {name!r}")))
    return labels


def parse_cvat_xml(path: Path) -> XmlExport:
    """Read ``annotations.xml`` (stdlib ElementTree: expat >= 2.4.1 refuses entity bombs, and external
    entities are never fetched); errors name the file and the image."""
    labels, images, skipped, first = None, [], Counter(), True
    try:
        for event, el in ET.iterparse(path, events=("start", "end")):
            if first:
                if el.tag != "annotations":
                    raise DataError(f"{path}: not a CVAT XML export (its root is <{el.tag}>, CVAT's is "
                                    "<annotations>); export as 'CVAT for images 1.1'")
                first = False
            elif event == "end" and el.tag == "meta":
                labels = _labels(el, path)
            elif event == "end" and el.tag == "image":
                images.append(_image(el, path, skipped))
                el.clear()  # the shapes are kept in XmlImage; drop the element's own copy
            elif event == "end" and el.tag == "track":
                raise DataError(f"{path}: holds tracks (a 'CVAT for video 1.1' export); export the task as "
                                "'CVAT for images 1.1' instead")
    except ET.ParseError as e:
        raise DataError(f"{path}: not valid XML ({e})") from None
    if not labels:
        raise DataError(f"{path}: no labels in <meta> (<task>, <job> or <project> <labels>); export from CVAT "
                        "with its meta section")
    return XmlExport(labels, images, skipped)


class CvatXmlReader(SampleReader):
    """Class ids painted from the shapes of the sample's ``<image>`` (see the module docstring).

    ``records[image path]`` is ``(height, width, shapes)`` with shapes sorted for painting; plain tuples
    and arrays, so the reader pickles for DataLoader workers. ``sample.mask`` is the XML file.
    """

    def __init__(self, classes: ClassSpec, records: dict[str, tuple[int, int, list[Shape]]]) -> None:
        super().__init__(classes)
        self.records = records

    def read_ids(self, sample: Sample) -> np.ndarray:
        height, width, shapes = self.records[str(sample.image)]
        real = self.image_size(sample)
        if real != (height, width):
            raise DataError(f"{sample.mask}: image {sample.image.name!r} is {width}x{height} (WxH) in the XML but "
                            f"{sample.image} is {real[1]}x{real[0]}; fix the XML or the image")
        ids = np.zeros((height, width), np.uint8)
        for _, position, kind, value, geometry in shapes:
            where = f"{sample.mask}: image {sample.image.name!r}, shape {position + 1}"
            if kind == "mask":
                left, top, w, h, runs = geometry
                box = ids[top : top + h, left : left + w]
                box[cvat_rle_decode(runs, h, w, where)] = value
            else:
                ids[polygon_mask(geometry, height, width, where)] = value
        return ids


def polygon_mask(points: list[float], height: int, width: int, where: str) -> np.ndarray:
    """The pixels a CVAT polygon covers, as CVAT's mask export paints them (pycocotools)."""
    try:
        api = mask_api()
    except ConfigError:
        raise ConfigError("the cvat format's polygons need pycocotools (CVAT paints polygons with it): "
                          "pip install 'pixelwise[coco]'") from None
    rle = to_rle(api, [points], height, width, where)
    with warnings.catch_warnings():  # pycocotools 2.0.11 under numpy 2 warns on every decode
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return api.decode(rle).astype(bool)
