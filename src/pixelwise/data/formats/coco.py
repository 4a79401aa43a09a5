"""COCO JSON instance annotations (polygons and RLE) painted into semantic masks.

Layouts (auto-detected):

* crowdAI mapping challenge: ``train/images/*.jpg`` + ``train/annotation.json`` (likewise ``val/``, ``test/``);
* COCO: ``annotations/instances_<split>.json`` with the images in ``<split>/`` or ``images/<split>/``; a
  trailing year is dropped from the split name (``instances_train2017.json`` is split ``train``);
* any other: ``--format coco:ann=PATH`` names one JSON (relative to the data folder); its images are looked
  up beside the JSON, in ``images/`` beside it, in the data folder or in its ``images/`` (the first that
  holds the first image), and split by ``train.txt`` / ``val.txt`` or every 10th image to val.

Classes: 0 is background, then category ``k`` of the JSON's ``categories`` list (in list order, whatever
its id: COCO's sparse ids 1..90 become 1..80) is class ``k + 1``, named after the category, coloured from
:func:`~pixelwise.data.classes.default_palette` (background black). A ``classes.yaml`` or ``--classes``
replaces names and colours but must keep this order. Every split's JSON must list the same categories.

Overlaps, a fixed rule: the annotations of an image are painted in order of decreasing area (the
``area`` field, else the pixel count of the decoded mask; ties by annotation id), so a small object
lying on a larger one stays visible. Crowd regions (``iscrowd: 1``) are painted after all others, as
ignore (255, ``crowd=ignore``, the default) or as their class (``--format coco:crowd=class``). Many
tools write per-class semantic masks as crowd RLEs, so when crowd regions make up more than half of a
JSON's annotated area (the ``area`` fields, else pycocotools' area of the decoded segmentation) and
``crowd=ignore``, the index carries a note saying so and naming ``crowd=class`` (train and inspect print it).

Polygons, uncompressed RLE (``counts`` a list) and compressed RLE (``counts`` a string) are decoded by
pycocotools, an optional extra (``pip install 'pixelwise[coco]'``). The JSON is read once when the
dataset is opened (every listed image must exist then); masks are decoded per sample, after checking the
JSON's ``width`` / ``height`` against the image file's header.

>>> detect_coco(Path("/nonexistent"))
False
>>> _split_name("train2017"), _split_name("val"), _split_name("minival2014")
('train', 'val', 'minival')
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pixelwise.core.constants import MASK_IGNORE
from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec, default_palette
from pixelwise.data.formats import base
from pixelwise.data.formats.coco_masks import Annotation, CocoReader, Record, mask_api, to_rle
from pixelwise.data.presets import resolve_classes
from pixelwise.data.sample import Sample

COCO_KEYS = ("images", "annotations", "categories")
CROWD_NOTE_SHARE = 0.5  # crowd regions above this share of the annotated area: most labels would be ignored
_YEAR = re.compile(r"^(.+?)(?:19|20)\d\d$")


def _split_name(name: str) -> str:
    """``train2017`` -> ``train``: the split of a COCO file name without its year."""
    match = _YEAR.match(name)
    return match.group(1) if match else name


def _coco_style(root: Path) -> list[Path]:
    folder = root / "annotations"
    return sorted(folder.glob("instances_*.json")) if folder.is_dir() else []


def _crowdai_style(root: Path) -> list[tuple[str, Path]]:
    return [(s, root / s / "annotation.json") for s in base.SPLITS if (root / s / "annotation.json").is_file()]


def detect_coco(root: Path) -> bool:
    return root.is_dir() and bool(_coco_style(root) or _crowdai_style(root))


def _split_order(name: str) -> tuple[int, str]:
    return (base.SPLITS.index(name) if name in base.SPLITS else len(base.SPLITS), name)


def _layout(root: Path) -> list[tuple[str, Path, Path]]:
    """``(split, json, image folder)`` of the COCO layout, else of the crowdAI one."""
    found: dict[str, tuple[Path, Path]] = {}
    for path in _coco_style(root):
        full = path.stem.removeprefix("instances_")
        split = _split_name(full)
        if split in found:
            raise DataError(f"{found[split][0]} and {path.name} both give split '{split}'; keep one year's "
                            "files in annotations/ or pick one with --format coco:ann=PATH")
        folders = [root / full, root / "images" / full]
        image_dir = next((f for f in folders if f.is_dir()), None)
        if image_dir is None:
            raise DataError(f"{path}: no image folder for split '{full}' (looked for {folders[0]} and "
                            f"{folders[1]}); unpack the {full} images there")
        found[split] = (path, image_dir)
    if not found:
        found = {s: (path, root / s / "images") for s, path in _crowdai_style(root)}
    return [(s, *found[s]) for s in sorted(found, key=_split_order)]


def load_coco_json(path: Path) -> dict:
    """A COCO annotation file, checked to hold ``images``, ``annotations`` and ``categories``."""
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: COCO annotation file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read this file ({e.strerror})") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise DataError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a COCO annotation file (a JSON object with keys {', '.join(COCO_KEYS)})")
    missing = [k for k in COCO_KEYS if not isinstance(data.get(k), list)]
    if missing:
        raise DataError(f"{path}: not a COCO annotation file: no list '{missing[0]}' (COCO JSON has "
                        f"{', '.join(COCO_KEYS)}; found keys: {', '.join(map(str, data)) or 'none'})")
    return data


def _categories(path: Path, data: dict) -> list[tuple[Any, str]]:
    """``(id, name)`` of each category, in list order."""
    cats = []
    for n, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int | str):
            raise DataError(f"{path}: categories[{n}] has no id (COCO categories are {{id, name}})")
        cats.append((cat["id"], str(cat.get("name", cat["id"]))))
    ids = [c for c, _ in cats]
    dupes = sorted({str(c) for c in ids if ids.count(c) > 1})
    if dupes:
        raise DataError(f"{path}: category id {dupes[0]} is listed twice in categories")
    if not cats:
        raise DataError(f"{path}: the categories list is empty; a COCO file names its classes there")
    return cats


def _spec_from_categories(cats: list[tuple[Any, str]], crowd: str) -> ClassSpec:
    names = ["background"] + [name for _, name in cats]
    colors = [(0, 0, 0), *default_palette(len(cats))]
    return ClassSpec.from_lists(names, colors, ignore_index=MASK_IGNORE if crowd == "ignore" else None)


class _Listing:
    """File names per folder, listed once: checking 100k images costs one ``listdir`` per folder."""

    def __init__(self) -> None:
        self.names: dict[Path, set[str]] = {}

    def exists(self, path: Path) -> bool:
        folder = path.parent
        if folder not in self.names:
            try:
                self.names[folder] = {e.name for e in os.scandir(folder) if e.is_file()}
            except OSError:
                self.names[folder] = set()
        return path.name in self.names[folder]


def _size(path: Path, entry: dict, key: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise DataError(f"{path}: image {entry.get('id')!r} has {key}={value!r}; COCO images give their "
                        "width and height in pixels")
    return value


def index_json(path: Path, data: dict, image_dir: Path, values: dict[Any, int]
               ) -> tuple[list[Sample], dict[str, Record]]:
    """The samples of one COCO JSON (sorted by file name) and the annotations of each image.

    ``values`` maps a category id to its class value; records are keyed by the image path as a string.
    """
    images: dict[Any, dict] = {}
    for n, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int | str) \
                or not isinstance(entry.get("file_name"), str):
            raise DataError(f"{path}: images[{n}] needs an id and a file_name")
        if entry["id"] in images:
            raise DataError(f"{path}: image id {entry['id']!r} is listed twice in images")
        images[entry["id"]] = entry
    anns: dict[Any, list[Annotation]] = {image_id: [] for image_id in images}
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotations[{n}] is not an object")
        ann_id = ann.get("id", f"#{n}")
        image_id = ann.get("image_id")
        if not isinstance(image_id, int | str) or image_id not in anns:
            raise DataError(f"{path}: annotation {ann_id} refers to image_id {image_id!r}, which is not in "
                            "images; fix the JSON or remove the annotation")
        category = ann.get("category_id")
        if not isinstance(category, int | str) or category not in values:
            raise DataError(f"{path}: annotation {ann_id} has category_id {category!r}, which is not in "
                            f"categories (ids: {', '.join(map(str, list(values)[:10]))})")
        if "segmentation" not in ann:
            raise DataError(f"{path}: annotation {ann_id} has no segmentation (polygons or RLE); semantic "
                            "masks cannot be made from boxes alone")
        area = ann.get("area")
        area = float(area) if isinstance(area, int | float) and not isinstance(area, bool) else None
        tie = ann_id if isinstance(ann_id, int) and not isinstance(ann_id, bool) else n
        anns[image_id].append((values[category], bool(ann.get("iscrowd", 0)), area, tie, ann["segmentation"]))
    listing = _Listing()
    samples, records = [], {}
    for image_id, entry in images.items():
        image = base.safe_join(image_dir, entry["file_name"], path)
        if not listing.exists(image):
            raise DataError(f"{path}: COCO annotation pointing at a missing image: image id {image_id!r} expects "
                            f"{image}; add the image or remove it from the JSON")
        if str(image) in records:
            raise DataError(f"{path}: file_name {entry['file_name']} is listed twice in images "
                            f"(ids {records[str(image)][0]!r} and {image_id!r})")
        records[str(image)] = (image_id, _size(path, entry, "height"), _size(path, entry, "width"), anns[image_id])
        samples.append(Sample(image, path))
    return sorted(samples, key=lambda s: str(s.image)), records


@base.register_format("coco", detect=detect_coco, detect_order=35,
                      description="COCO JSON: annotations/instances_<split>.json or "
                                  "<split>/images + <split>/annotation.json")
def open_coco(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: background, then the JSON's categories in list order. Polygons and RLE; needs
    ``pip install 'pixelwise[coco]'``; options ``ann=PATH`` (one JSON), ``crowd=ignore|class``."""
    options = base.take_options("coco", options, {"ann": None, "crowd": ("ignore", "class")})
    crowd = options.get("crowd", "ignore")
    mask_api()  # fail now, not in the first DataLoader worker
    if "ann" in options:
        path = Path(options["ann"]) if Path(options["ann"]).is_absolute() else root / options["ann"]
        if not path.is_file():
            raise DataError(f"{path}: COCO annotation file not found (--format coco:ann=PATH is relative to "
                            f"{root})")
        data = load_coco_json(path)
        image_dir = _custom_image_dir(root, path, data)
        jsons = [("", path, image_dir, data)]
    else:
        layout = _layout(root)
        if not layout:
            raise DataError(f"{root}: no COCO annotations found (annotations/instances_<split>.json or "
                            "<split>/annotation.json); name the file with --format coco:ann=PATH")
        jsons = [(split, path, image_dir, load_coco_json(path)) for split, path, image_dir in layout]
    first_path, first_cats = jsons[0][1], _categories(jsons[0][1], jsons[0][3])
    for _, path, _, data in jsons[1:]:
        if _categories(path, data) != first_cats:
            raise DataError(f"{path}: its categories differ from those of {first_path}; every split must list "
                            "the same categories in the same order")
    spec = classes if isinstance(classes, ClassSpec) else resolve_classes(classes, root)
    if spec is None:
        spec = _spec_from_categories(first_cats, crowd)
    elif spec.num_classes < len(first_cats) + 1:
        raise DataError(f"{first_path}: {len(first_cats)} categories need {len(first_cats) + 1} classes "
                        f"(background first), but the classes given have {spec.num_classes}")
    values = {cat_id: k + 1 for k, (cat_id, _) in enumerate(first_cats)}
    splits: dict[str, list[Sample]] = {}
    records: dict[str, dict[str, Record]] = {}
    notes = []
    for split, path, image_dir, data in jsons:
        samples, records[str(path)] = index_json(path, data, image_dir, values)
        share = crowd_share(path, records[str(path)])
        if crowd == "ignore" and share > CROWD_NOTE_SHARE:
            notes.append(f"{path}: {share:.0%} of the annotated area is crowd regions (iscrowd: 1), which become "
                         "ignore (crowd=ignore, the default), so most labelled pixels are not trained on; keep them "
                         "as their class with --format coco:crowd=class")
        if split:
            splits[split] = samples
        else:
            splits = base.split_samples(root, samples)
    del jsons  # the parsed JSON: only the per-image records are kept
    return base.DatasetIndex(root, "coco", spec, splits, CocoReader(spec, records, crowd), notes=notes)


def crowd_share(path: Path, records: dict[str, Record]) -> float:
    """The crowd annotations' share of the annotated area of one JSON: their ``area`` fields, else
    pycocotools' area of the decoded segmentation (overlaps count twice, as in the ``area`` fields)."""
    api = mask_api()
    crowd = total = 0.0
    for _, height, width, anns in records.values():
        for _, is_crowd, area, tie, segmentation in anns:
            if area is None:
                rle = to_rle(api, segmentation, height, width, f"{path}: annotation {tie}")
                area = float(api.area(rle)) if rle is not None else 0.0
            total += area
            crowd += area if is_crowd else 0.0
    return crowd / total if total else 0.0


def _custom_image_dir(root: Path, path: Path, data: dict) -> Path:
    """Where the images of a ``--format coco:ann=PATH`` JSON are: the first candidate holding the first."""
    candidates = [path.parent, path.parent / "images", root, root / "images"]
    names = [e.get("file_name") for e in data["images"] if isinstance(e, dict)]
    first = next((n for n in names if isinstance(n, str)), None)
    if first is not None:
        for folder in candidates:
            if (folder / first).is_file():
                return folder
    return candidates[0]
