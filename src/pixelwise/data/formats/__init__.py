"""Dataset layouts on disk, detected automatically: one module per format, registered by decorator.

The registry and what formats share live in :mod:`pixelwise.data.formats.base`; importing this package
imports every format module, so ``open_dataset`` and ``list_formats`` see them all.

>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> (root / "images").mkdir()
>>> detect_format(root)
'folders'
"""

from __future__ import annotations

# Each module registers its format(s) on import.
from pixelwise.data.formats import (  # noqa: F401
    camvid,
    carla,
    cityscapes,
    coco,
    colormasks,
    cvat,
    folders,
    label_studio,
    pets,
    rle_csv,
)
from pixelwise.data.formats.base import (
    FORMATS,
    SPLITS,
    ClassesArg,
    DatasetIndex,
    Format,
    detect_format,
    list_formats,
    open_dataset,
    pair_by_stem,
    parse_format,
    register_format,
    split_samples,
)

__all__ = [
    "FORMATS",
    "SPLITS",
    "ClassesArg",
    "DatasetIndex",
    "Format",
    "detect_format",
    "list_formats",
    "open_dataset",
    "pair_by_stem",
    "parse_format",
    "register_format",
    "split_samples",
]
