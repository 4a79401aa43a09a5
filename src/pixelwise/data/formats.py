"""Dataset layouts on disk, detected automatically.

* ``folders``: ``images/`` + ``masks/`` (single-channel index PNGs) matched by file stem, split by
  subfolders (``images/train``, ``masks/train`` or ``train/images``, ``train/masks``) or by list files
  (``train.txt``, ``val.txt``: one stem per line). With neither, every 10th image goes to ``val``.
* ``camvid``: the SegNet layout ``train/ trainannot/ val/ valannot/ test/ testannot/``.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "images").mkdir()
>>> detect_format(root)
'folders'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pixelwise.data.classes import ClassSpec, get_preset, resolve_classes
from pixelwise.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from pixelwise.data.sample import Sample, SampleReader
from pixelwise.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetIndex:
    """What a format found: the samples of each split, the classes, and how to read a sample."""

    root: Path
    format: str
    classes: ClassSpec
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    reader: SampleReader | None = None  # None: index-mask files

    def __post_init__(self) -> None:
        if self.reader is None:
            self.reader = SampleReader(self.classes)

    def split(self, name: str) -> list[Sample]:
        samples = self.splits.get(name, [])
        if not samples:
            found = ", ".join(f"{k} ({len(v)})" for k, v in self.splits.items() if v) or "none"
            raise DataError(f"{self.root}: split '{name}' is empty or missing (splits found: {found})")
        return samples


def _files(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """Files of a folder keyed by stem (hidden files skipped)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")}


def pair_by_stem(image_dir: Path, mask_dir: Path, stems: list[str] | None = None) -> list[Sample]:
    """Match images and masks by stem; any unpaired file is an error naming it."""
    images, masks = _files(image_dir, IMAGE_EXTENSIONS), _files(mask_dir, MASK_EXTENSIONS)
    if stems is not None:
        missing = [s for s in stems if s not in images]
        if missing:
            raise DataError(f"{image_dir}: '{missing[0]}' is listed in a split file but has no image "
                            f"({len(missing)} missing); fix the list or add the image")
        images = {s: images[s] for s in stems}
        masks = {s: masks[s] for s in stems if s in masks}
    no_mask = [p for s, p in images.items() if s not in masks]
    if no_mask:
        raise DataError(f"{no_mask[0]}: image has no mask in {mask_dir} ({len(no_mask)} such images); "
                        "add the mask or remove the image")
    no_image = [p for s, p in masks.items() if s not in images]
    if no_image:
        raise DataError(f"{no_image[0]}: mask has no image in {image_dir} ({len(no_image)} such masks); "
                        "add the image or remove the mask")
    return [Sample(images[s], masks[s]) for s in sorted(images)]


def _index_folders(root: Path) -> dict[str, list[Sample]]:
    if any((root / "images" / s).is_dir() for s in SPLITS):
        return {s: pair_by_stem(root / "images" / s, root / "masks" / s)
                for s in SPLITS if (root / "images" / s).is_dir()}
    if any((root / s / "images").is_dir() for s in SPLITS):
        return {s: pair_by_stem(root / s / "images", root / s / "masks")
                for s in SPLITS if (root / s / "images").is_dir()}
    list_files = {s: root / f"{s}.txt" for s in SPLITS if (root / f"{s}.txt").is_file()}
    if list_files:
        return {s: pair_by_stem(root / "images", root / "masks", _read_list(f)) for s, f in list_files.items()}
    samples = pair_by_stem(root / "images", root / "masks")
    # No split given: hold out every 10th image (deterministic, spread over the sorted names).
    return {"train": [x for i, x in enumerate(samples) if i % 10 != 9],
            "val": [x for i, x in enumerate(samples) if i % 10 == 9]}


def _read_list(path: Path) -> list[str]:
    """Stems from a split file; lines may be bare stems ("frame.001") or file names ("frame.001.png")."""
    stems = []
    for line in path.read_text().splitlines():
        name = Path(line.strip()).name
        if name:
            stems.append(Path(name).stem if name.lower().endswith(IMAGE_EXTENSIONS) else name)
    return stems


def _index_camvid(root: Path) -> dict[str, list[Sample]]:
    return {s: pair_by_stem(root / s, root / f"{s}annot") for s in SPLITS if (root / f"{s}annot").is_dir()}


@dataclass(frozen=True)
class Format:
    name: str
    detect: Callable[[Path], bool]
    index: Callable[[Path], dict[str, list[Sample]]]
    default_classes: str | None = None  # preset used when neither --classes nor classes.yaml is given


FORMATS: dict[str, Format] = {
    "camvid": Format("camvid", lambda r: (r / "trainannot").is_dir() or (r / "valannot").is_dir(),
                     _index_camvid, "camvid"),
    "folders": Format("folders", lambda r: (r / "images").is_dir() or any((r / s / "images").is_dir()
                                                                           for s in SPLITS), _index_folders),
}


def detect_format(root: Path) -> str:
    for fmt in FORMATS.values():
        if fmt.detect(root):
            return fmt.name
    raise DataError(f"{root}: no dataset layout recognised; expected images/ + masks/ (folders) "
                    "or train/ + trainannot/ (camvid)")


def open_dataset(root: str | Path, format: str = "auto", classes: str | Path | ClassSpec | None = None
                 ) -> DatasetIndex:
    """Find the samples and classes of the dataset at ``root``.

    ``classes`` is a preset name, a classes.yaml path or a :class:`ClassSpec`; by default the
    ``classes.yaml`` beside the data, else the format's preset.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; check --data (it must be a folder)")
    if format == "auto":
        format = detect_format(root)
    if format not in FORMATS:
        raise ConfigError(f"unknown --format '{format}'; choose one of auto, {', '.join(FORMATS)}")
    fmt = FORMATS[format]
    spec = classes if isinstance(classes, ClassSpec) else resolve_classes(classes, root)
    if spec is None and fmt.default_classes:
        spec = get_preset(fmt.default_classes)
    if spec is None:
        raise DataError(f"{root}: no classes.yaml found; write one beside the data (see README) "
                        "or pass --classes PRESET|PATH")
    splits = fmt.index(root)
    if not any(splits.values()):
        raise DataError(f"{root}: no image/mask pairs found in the {format} layout")
    return DatasetIndex(root=root, format=format, classes=spec, splits=splits)
