"""``folders``: ``images/`` + ``masks/`` single-channel index PNGs matched by file stem.

Splits come from subfolders (``images/train``, ``masks/train`` or ``train/images``, ``train/masks``) or
from list files (``train.txt``, ``val.txt``: one stem per line). With neither, every 10th image goes
to ``val``. Classes come from ``classes.yaml`` beside the data or ``--classes``; without either, they
are inferred from the masks where that is unambiguous (see :mod:`pixelwise.data.infer_classes`).

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "images").mkdir()
>>> detect_folders(root)
True
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.data.formats import base
from pixelwise.data.sample import Sample

# Top-level folder names of the folders layout; the singular ones are the U-Net tutorials' (image/, label/).
IMAGE_DIRS, MASK_DIRS = ("images", "image"), ("masks", "labels", "label")


def detect_folders(root: Path) -> bool:
    return any((root / n).is_dir() for n in IMAGE_DIRS) or any((root / s / "images").is_dir() for s in base.SPLITS)


def _folder(root: Path, names: tuple[str, ...]) -> Path:
    return next((root / n for n in names if (root / n).is_dir()), root / names[0])


def index_folders(root: Path) -> dict[str, list[Sample]]:
    if any((root / "images" / s).is_dir() for s in base.SPLITS):
        return {s: base.pair_by_stem(root / "images" / s, root / "masks" / s)
                for s in base.SPLITS if (root / "images" / s).is_dir()}
    if any((root / s / "images").is_dir() for s in base.SPLITS):
        return {s: base.pair_by_stem(root / s / "images", root / s / "masks")
                for s in base.SPLITS if (root / s / "images").is_dir()}
    image_dir, mask_dir = _folder(root, IMAGE_DIRS), _folder(root, MASK_DIRS)
    list_files = {s: root / f"{s}.txt" for s in base.SPLITS if (root / f"{s}.txt").is_file()}
    if list_files:
        return {s: base.pair_by_stem(image_dir, mask_dir, base.read_list(f)) for s, f in list_files.items()}
    return base.split_samples(root, base.pair_by_stem(image_dir, mask_dir))


# Last in auto-detection: an images/ folder is also part of more specific layouts (pets, COCO).
@base.register_format("folders", detect=detect_folders, detect_order=90,
                      description="images/ + masks/ index PNGs, split by subfolders or train.txt/val.txt")
def open_folders(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: ``classes.yaml`` beside the data. Splits: subfolders (``images/train``, ``masks/train`` or
    ``train/images``, ``train/masks``), else ``train.txt`` / ``val.txt``, else every 10th image is ``val``."""
    base.take_options("folders", options, {})
    return base.index_with_classes(root, "folders", classes, index_folders(root))
