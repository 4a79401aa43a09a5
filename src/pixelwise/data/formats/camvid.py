"""``camvid``: the SegNet layout ``train/ trainannot/ val/ valannot/ test/ testannot/`` of index masks.

Any of the three splits may be missing: a held-out copy with only ``test/`` and ``testannot/`` is
recognised too. Classes default to the ``camvid`` preset (11 classes, 11 = void).

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "testannot").mkdir()
>>> detect_camvid(root)
True
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.data.formats import base


def detect_camvid(root: Path) -> bool:
    return any((root / f"{split}annot").is_dir() for split in base.SPLITS)


@base.register_format("camvid", detect=detect_camvid, description="SegNet layout: train/ trainannot/ val/ valannot/")
def open_camvid(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: the ``camvid`` preset (11 classes, 11 = void); any split may be missing."""
    base.take_options("camvid", options, {})
    splits = {s: base.pair_by_stem(root / s, root / f"{s}annot") for s in base.SPLITS if (root / f"{s}annot").is_dir()}
    return base.DatasetIndex(root, "camvid", base.classes_or_default(root, classes, "camvid"), splits)
