"""``predict --to cvat``: predictions as a CVAT for images 1.1 ``annotations.xml`` of masks.

One ``<mask>`` per class per image (background, class 0, is left unpainted: CVAT's unlabelled pixels),
in CVAT's run-length code over the class's bounding box (see :mod:`pixelwise.data.formats.cvat_xml`);
``<meta>`` lists every class as a label with its colour. CVAT matches the annotations to a task's images
by file name, so each ``<image name=>`` is the image's file name; two images of one name are refused.
Import it in CVAT with Actions > Upload annotations > "CVAT 1.1" into a task made from the same images
(its labels named as the classes).

>>> import tempfile
>>> from pixelwise.data.classes import ClassSpec
>>> writer = CvatWriter(ClassSpec.from_lists(["background", "cell"]), model_version="demo")
>>> writer.add(Path("images/a.png"), np.array([[0, 1], [1, 1]], np.uint8))
>>> path = writer.write(Path(tempfile.mkdtemp()))
>>> '<mask label="cell"' in path.read_text() and 'rle="1, 3"' in path.read_text()
True
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from pixelwise.core.errors import DataError
from pixelwise.core.files import write_text
from pixelwise.data.formats.cvat_xml import cvat_rle_encode
from pixelwise.data.preannotations.base import PreAnnotationWriter, register_preannotation_writer


def _meta(root: ET.Element, names: list[str], colors: np.ndarray, size: int, model_version: str) -> None:
    """``<meta><task>`` with the labels, as CVAT writes it (it reads the labels from here)."""
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = f"pixelwise predictions {model_version}".strip()
    ET.SubElement(task, "size").text = str(size)
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for name, (r, g, b) in zip(names, colors.tolist(), strict=True):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "color").text = f"#{r:02x}{g:02x}{b:02x}"
        ET.SubElement(label, "type").text = "mask"
        ET.SubElement(label, "attributes")


def _masks(element: ET.Element, labels: np.ndarray, names: list[str], skip: int | None) -> None:
    """One ``<mask>`` per class present in ``labels`` (except ``skip``), its RLE over the class's box."""
    for value in np.unique(labels).tolist():
        if value == skip or value >= len(names):
            continue  # background is what CVAT leaves unlabelled; 255 (ignore) is no class
        region = labels == value
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
        runs = cvat_rle_encode(region[top : bottom + 1, left : right + 1])
        ET.SubElement(element, "mask", {
            "label": names[value], "source": "auto", "occluded": "0", "rle": ", ".join(map(str, runs)),
            "left": str(left), "top": str(top), "width": str(right - left + 1), "height": str(bottom - top + 1),
            "z_order": "0"})


@register_preannotation_writer("cvat")
class CvatWriter(PreAnnotationWriter):
    """CVAT for images 1.1 XML: one mask per class per image (see the module docstring)."""

    file_name = "annotations.xml"

    def write(self, folder: Path) -> Path:
        names = self.classes.names
        skip = 0 if names[0] == "background" else None  # a class 0 of another name is painted like any class
        root = ET.Element("annotations")
        ET.SubElement(root, "version").text = "1.1"
        _meta(root, names, self.classes.palette, len(self.items), self.model_version)
        seen: dict[str, Path] = {}
        for number, (image, labels) in enumerate(self.items):
            if image.name in seen:
                raise DataError(f"{image}: CVAT matches annotations to images by file name, and {seen[image.name]} "
                                "has the same name; predict the two folders separately")
            seen[image.name] = image
            height, width = labels.shape
            element = ET.SubElement(root, "image", {"id": str(number), "name": image.name, "width": str(width),
                                                    "height": str(height)})
            _masks(element, labels, names, skip)
        ET.indent(root, space="  ")
        path = Path(folder) / self.file_name
        write_text(path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
        return path
