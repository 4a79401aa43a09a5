"""Layouts whose labels are colour images: pix2pix-style composites and the 32-class CamVid.

``composite``: ``train/`` and ``val/`` hold images with the photo on the left half and its colour mask
on the right half (the popular 256x512 Cityscapes set). Colours map to the nearest colour of the
``--classes`` palette (default ``cityscapes-labelids``); pixels farther than ``tolerance`` from every
colour are ignored (``--format composite:tolerance=40``; ``tolerance=inf`` keeps them all). Composites
are nearly always JPEG, which keeps luma at full resolution but chroma at half (4:2:0), so a JPEG mask
is matched on luma more than on chroma (:func:`~pixelwise.data.colors.jpeg_colors_to_ids`). Measured by
``benchmarks/check_composite.py`` on 100 CamVid composites (256x512, JPEG quality 90, 4:2:0), the share
of non-void pixels decoded to their true class: plain nearest RGB colour 98.76%; pixelwise 99.38% (the
same with ``tolerance=inf``), where it was 98.02% (98.43% with ``tolerance=inf``) when it matched RGB
and re-decided smeared pixels among their neighbours' classes, which erased thin poles. Never KMeans:
clustering invents classes and shuffles their ids.

``camvid32``: the original 32-class CamVid colour labels, as ``train/ train_labels/ val/ val_labels/
test/ test_labels/`` with ``class_dict.csv`` (name,r,g,b) and masks named ``<image stem>_L.png``.

>>> detect_composite(Path("/nonexistent")), detect_camvid32(Path("/nonexistent"))
(False, False)
"""

from __future__ import annotations

import csv
from pathlib import Path

from pixelwise.core.constants import COLOR_TOLERANCE
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import base
from pixelwise.data.io import IMAGE_EXTENSIONS, image_size
from pixelwise.data.sample import ColorMaskReader, CompositeReader, Sample


def _tolerance(fmt: str, options: dict[str, str]) -> float:
    base.take_options(fmt, options, {"tolerance": None})
    try:
        return float(options.get("tolerance", COLOR_TOLERANCE))
    except ValueError:
        raise ConfigError(f"--format {fmt}: tolerance={options['tolerance']} is not a number") from None


def detect_composite(root: Path) -> bool:
    """Split folders of images only, whose first image is about twice as wide as a photo."""
    for split in base.SPLITS:
        files = sorted(base.files_by_stem(root / split, IMAGE_EXTENSIONS).values())
        if files and not (root / f"{split}annot").exists() and not (root / f"{split}_labels").exists():
            try:
                height, width = image_size(files[0])
            except DataError:
                return False
            # photo + mask side by side: an even width, and twice a photo's usual 1:1 to 2:1 aspect
            return width % 2 == 0 and 1.6 * height <= width <= 4.5 * height
    return False


@base.register_format("composite", detect=detect_composite, detect_order=80,
                      description="train/ val/ of photo|colour-mask images side by side")
def open_composite(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: any palette, default ``cityscapes-labelids`` (the 256x512 Cityscapes pix2pix set); option
    ``tolerance=30``, the largest colour distance to a class's colour (JPEG: luma-weighted)."""
    tolerance = _tolerance("composite", options)
    spec = base.classes_or_default(root, classes, "cityscapes-labelids")
    splits = {s: [Sample(p, p) for p in sorted(base.files_by_stem(root / s, IMAGE_EXTENSIONS).values())]
              for s in base.SPLITS if (root / s).is_dir()}
    return base.DatasetIndex(root, "composite", spec, splits, CompositeReader(spec, tolerance))


def read_class_dict(path: Path) -> ClassSpec:
    """CamVid's ``class_dict.csv``: a header ``name,r,g,b`` and one class per row."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return ClassSpec.from_lists([r["name"] for r in rows], [(int(r["r"]), int(r["g"]), int(r["b"])) for r in rows])
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: expected a header name,r,g,b and one class per row ({e})") from None


def detect_camvid32(root: Path) -> bool:
    return (root / "class_dict.csv").is_file() and any((root / f"{s}_labels").is_dir() for s in base.SPLITS)


@base.register_format("camvid32", detect=detect_camvid32, detect_order=25,
                      description="train/ train_labels/ (<stem>_L.png colour masks) + class_dict.csv")
def open_camvid32(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """The 32-class CamVid colour labels. Classes: from ``class_dict.csv`` (``name,r,g,b``) or
    ``classes.yaml``; option ``tolerance=30``, the largest colour distance to a class's colour."""
    tolerance = _tolerance("camvid32", options)
    spec = base.classes_or_default(root, classes, None) if classes is not None or (root / "classes.yaml").is_file() \
        else read_class_dict(root / "class_dict.csv")
    splits = {s: base.pair_by_stem(root / s, root / f"{s}_labels", mask_suffix="_L")
              for s in base.SPLITS if (root / f"{s}_labels").is_dir()}
    return base.DatasetIndex(root, "camvid32", spec, splits, ColorMaskReader(spec, tolerance))
