"""Cityscapes: the official layout and the popular 256x512 photo|mask composites.

Official: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``. Targets follow ``--classes``: ``cityscapes``
(the 19 train ids, the benchmark's classes; everything else ignored), ``cityscapes-categories``
(8 categories) or ``cityscapes-labelids`` (all 34 label ids).

Composite: ``train/`` and ``val/`` hold JPEGs with the photo on the left half and its colour mask on
the right half; colours map to classes by nearest palette colour (``--classes``, default
``cityscapes-labelids``), never by clustering.

>>> detect_cityscapes(Path("/nonexistent"))
False
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import base
from pixelwise.data.label_tables import cityscapes_id_to_category, cityscapes_id_to_train_id
from pixelwise.data.presets import get_preset
from pixelwise.data.sample import LookupReader, Sample

_IMAGE_SUFFIX, _LABEL_SUFFIX = "_leftImg8bit.png", "_gtFine_labelIds.png"
NUM_LABEL_IDS = 34


def label_id_table(classes: ClassSpec) -> np.ndarray:
    """Label id (0..33) -> class id for the chosen targets; other values are unknown (256)."""
    table = np.full(256, 256, np.uint16)
    if classes == get_preset("cityscapes"):
        table[:NUM_LABEL_IDS] = cityscapes_id_to_train_id()[:NUM_LABEL_IDS]
    elif classes == get_preset("cityscapes-categories"):
        table[:NUM_LABEL_IDS] = cityscapes_id_to_category()[:NUM_LABEL_IDS]
    elif classes == get_preset("cityscapes-labelids"):
        table[:NUM_LABEL_IDS] = np.arange(NUM_LABEL_IDS)
    else:
        raise ConfigError("Cityscapes targets are --classes cityscapes (19 train ids), cityscapes-categories "
                          "or cityscapes-labelids")
    return table


def detect_cityscapes(root: Path) -> bool:
    return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()


def index_cityscapes(root: Path) -> dict[str, list[Sample]]:
    splits: dict[str, list[Sample]] = {}
    for split_dir in sorted(p for p in (root / "leftImg8bit").iterdir() if p.is_dir()):
        samples = []
        for image in sorted(split_dir.glob(f"*/*{_IMAGE_SUFFIX}")):
            name = image.name[: -len(_IMAGE_SUFFIX)]
            label = root / "gtFine" / split_dir.name / image.parent.name / f"{name}{_LABEL_SUFFIX}"
            if not label.is_file():
                if split_dir.name == "test":  # the public test split has no labels
                    break
                raise DataError(f"{image}: has no label file {label}; unpack gtFine_trainvaltest.zip beside "
                                "leftImg8bit_trainvaltest.zip")
            samples.append(Sample(image, label))
        if samples:
            splits[split_dir.name] = samples
    return splits


@base.register_format("cityscapes", detect=detect_cityscapes, detect_order=10,
                      description="leftImg8bit/<split>/<city>/ + gtFine/<split>/<city>/")
def open_cityscapes(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Labels from ``*_gtFine_labelIds.png``. Classes: ``cityscapes`` (the 19 train ids, the default),
    ``cityscapes-categories`` (8) or ``cityscapes-labelids`` (all 34 label ids)."""
    base.take_options("cityscapes", options, {})
    spec = base.classes_or_default(root, classes, "cityscapes")
    reader = LookupReader(spec, label_id_table(spec), what="Cityscapes label id", valid="0..33")
    return base.DatasetIndex(root, "cityscapes", spec, index_cityscapes(root), reader)
