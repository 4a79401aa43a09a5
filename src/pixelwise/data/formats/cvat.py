"""``cvat``: the two CVAT exports that hold segmentation, read exactly (auto-detected).

* **Segmentation mask 1.1** (a Pascal VOC layout written by Datumaro): ``labelmap.txt`` with lines
  ``name:r,g,b:parts:actions``, colour masks ``SegmentationClass/<id>.png``, the images
  ``JPEGImages/<id>.<ext>`` (export "with images") and the subsets ``ImageSets/Segmentation/<subset>.txt``
  (one image id per line). Each colour of ``labelmap.txt`` is one class; a mask colour it does not list is
  an error naming the file and the colour (PNG is lossless, so no tolerance is needed). An image listed
  without a mask file is all background: Datumaro writes no mask for an image without shapes.
* **CVAT for images 1.1**: ``annotations.xml`` with the images in ``images/`` (``images/<subset>/`` in a
  project export); polygons and masks are painted in z-order, see :mod:`pixelwise.data.formats.cvat_xml`.

Classes: the export's labels in its order (``labelmap.txt``, or the XML's ``<meta>`` labels with their
``<color>``), with ``background`` (black) first, added when the export has none; unlabelled pixels are
background. A ``classes.yaml`` or ``--classes`` may rename and recolour them but keeps this order.

Splits: CVAT's subsets, ``Train`` -> train, ``Validation`` -> val, ``Test`` -> test (any other name
lowercased). An export with only CVAT's ``default`` subset is the training set, every 10th image (by name)
held out as val, and a note says so. Option ``layout=masks|xml`` picks one when a folder holds both.

>>> detect_cvat(Path("/nonexistent")), split_name("Validation"), split_name("default")
(False, 'val', 'train')
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec, default_palette
from pixelwise.data.formats import base
from pixelwise.data.formats.cvat_xml import CvatXmlReader, XmlExport, parse_cvat_xml
from pixelwise.data.io import IMAGE_EXTENSIONS, read_image
from pixelwise.data.sample import Sample, SampleReader

Label = tuple[str, tuple[int, int, int] | None]
SUBSETS = {"default": "train", "training": "train", "validation": "val", "testing": "test"}


def split_name(subset: str) -> str:
    """The pixelwise split of a CVAT subset name."""
    name = subset.strip().lower()
    return SUBSETS.get(name, name or "train")


def _has_xml(root: Path) -> bool:
    path = root / "annotations.xml"
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return b"<annotations" in f.read(4096)


def _has_masks(root: Path) -> bool:
    return (root / "labelmap.txt").is_file() and (root / "SegmentationClass").is_dir()


def detect_cvat(root: Path) -> bool:
    return root.is_dir() and (_has_masks(root) or _has_xml(root))


def read_labelmap(path: Path) -> list[Label]:
    """``labelmap.txt``: ``name:r,g,b:parts:actions`` per label; ``#`` lines are comments."""
    labels: list[Label] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.strip().split(":")
        try:
            color = tuple(int(v) for v in fields[1].split(","))
        except (IndexError, ValueError):
            color = ()
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise DataError(f"{path} line {number}: {line.strip()!r} is not 'name:r,g,b::' (CVAT's labelmap gives "
                            "every label its mask colour)")
        labels.append((fields[0].strip(), color))
    return labels


def with_background(labels: list[Label], path: Path) -> tuple[list[Label], list[str]]:
    """The labels with ``background`` first (added, black, when missing); duplicate names are an error."""
    names = [name for name, _ in labels]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{path}: label {twice[0]!r} is listed twice; rename one in CVAT and export again")
    if "background" in names:
        k = names.index("background")
        return [labels[k], *labels[:k], *labels[k + 1 :]], []
    return [("background", (0, 0, 0)), *labels], [f"cvat: no 'background' label in {path.name}; pixels no shape "
                                                   "covers are class 0, 'background'"]


def labels_in_order(labels: list[Label], given: ClassSpec | None, path: Path) -> tuple[list[Label], list[str]]:
    """The export's labels in class-id order: the given classes' order when they name exactly the export's
    labels (plus ``background`` or not), e.g. the classes.yaml of a dataset written with ``--target cvat``
    whose class 0 is not called background; else ``background`` first (:func:`with_background`)."""
    names = [name for name, _ in labels]
    if given is not None and len(set(names)) == len(names) and set(given.names) in (set(names), {*names, "background"}):
        colors = dict(labels)
        return [(name, colors.get(name, (0, 0, 0))) for name in given.names], []
    return with_background(labels, path)


def _spec(labels: list[Label], given: ClassSpec | None, path: Path) -> ClassSpec:
    """``--classes`` / classes.yaml when given (at least as many classes), else the export's labels."""
    if given is not None:
        if given.num_classes < len(labels):
            raise DataError(f"{path}: the export has {len(labels)} classes (background first) but the classes "
                            f"given have {given.num_classes}; list them all, in the export's order")
        return given
    used: set[tuple[int, int, int]] = set()
    spare = iter(c for c in default_palette(len(labels) + 64) if c not in {c for _, c in labels})
    colors = []
    for _, color in labels:  # a display colour only here: a missing or repeated one gets a free one
        color = color if color is not None and color not in used else next(spare)
        used.add(color)
        colors.append(color)
    return ClassSpec.from_lists([name for name, _ in labels], colors)


def _splits(root: Path, by_subset: dict[str, list[Sample]], notes: list[str]) -> dict[str, list[Sample]]:
    """Samples per pixelwise split; a lone ``default`` subset is split by ``train.txt`` / ``val.txt`` beside
    the export when present (``datasets convert --target cvat`` writes them), else it becomes train with
    every 10th image as val."""
    if set(by_subset) <= {"default", ""} and any((root / f"{split}.txt").is_file() for split in base.SPLITS):
        return base.split_samples(root, [s for samples in by_subset.values() for s in samples])
    splits: dict[str, list[Sample]] = {}
    for subset, samples in by_subset.items():
        splits.setdefault(split_name(subset), []).extend(samples)
    if set(by_subset) <= {"default", ""} and "train" in splits:
        samples = sorted(splits["train"], key=lambda s: str(s.image))
        held = {i for i in range(len(samples)) if i % 10 == 9} or ({len(samples) - 1} if len(samples) > 1 else set())
        splits = {"train": [s for i, s in enumerate(samples) if i not in held],
                  "val": [s for i, s in enumerate(samples) if i in held]}
        notes.append("cvat: the export has only CVAT's 'default' subset: it is the training set, every 10th image "
                     "held out as val (name subsets Train / Validation in CVAT to choose the split)")
    return splits


class CvatMaskReader(SampleReader):
    """Colour masks decoded exactly: each pixel's colour must be one of the export's label colours."""

    def __init__(self, classes: ClassSpec, colors: list[tuple[int, int, int]], unmasked: Iterable[str]) -> None:
        super().__init__(classes)
        codes = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], np.uint32)  # 0xRRGGBB per class
        order = np.argsort(codes)
        self.sorted_codes, self.sorted_ids = codes[order], order.astype(np.uint8)  # for np.searchsorted
        # Images listed without a mask file (all background); a dict in name order, not a set, so that its repr
        # (part of the cache key) is the same in every process.
        self.unmasked = dict.fromkeys(sorted(unmasked))

    def read_ids(self, sample: Sample) -> np.ndarray:
        if str(sample.image) in self.unmasked:
            return np.zeros(self.image_size(sample), np.uint8)
        rgb = read_image(sample.mask)
        codes = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
        at = np.searchsorted(self.sorted_codes, codes).clip(max=len(self.sorted_codes) - 1)
        known = self.sorted_codes[at] == codes
        if not known.all():
            code = int(codes[~known][0])
            raise DataError(f"{sample.mask}: colour ({code >> 16}, {(code >> 8) & 255}, {code & 255}) on "
                            f"{int((codes == code).sum())} pixels is not a colour of labelmap.txt; add its label "
                            "there or fix the mask")
        return self.sorted_ids[at]


def _open_masks(root: Path, given: ClassSpec | None) -> base.DatasetIndex:
    labelmap = root / "labelmap.txt"
    labels, notes = labels_in_order(read_labelmap(labelmap), given, labelmap)
    colors = [color for _, color in labels]
    for k, color in enumerate(colors):
        if color in colors[:k]:
            raise DataError(f"{labelmap}: labels {labels[colors.index(color)][0]!r} and {labels[k][0]!r} share the "
                            f"colour {color}, so their masks cannot be told apart; give one another colour")
    lists = sorted((root / "ImageSets" / "Segmentation").glob("*.txt"))
    if lists:
        ids = {p.stem: [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()] for p in lists}
    else:  # no subset lists: every mask is one image of the default subset
        masks = root / "SegmentationClass"
        ids = {"default": sorted(p.relative_to(masks).with_suffix("").as_posix() for p in masks.rglob("*.png"))}
    images_dir, masks_dir = root / "JPEGImages", root / "SegmentationClass"
    by_subset: dict[str, list[Sample]] = {}
    unmasked = []
    for subset, names in ids.items():
        source = root / "ImageSets" / "Segmentation" / f"{subset}.txt" if lists else masks_dir
        by_subset[subset] = []
        for name in names:
            mask = base.safe_join(masks_dir, f"{name}.png", source)
            image = _image_file(images_dir, name, source)
            if not mask.is_file():
                unmasked.append(str(image))
                mask = labelmap  # an existing file stands in (caches stat it); the reader paints background
            by_subset[subset].append(Sample(image, mask))
    if unmasked:
        notes.append(f"cvat: {len(unmasked)} images have no mask in SegmentationClass/ (no shapes in CVAT): all "
                     "background")
    spec = _spec(labels, given, labelmap)
    splits = _splits(root, by_subset, notes)
    return base.DatasetIndex(root, "cvat", spec, splits, CvatMaskReader(spec, colors, unmasked), notes=notes)


def _image_file(folder: Path, name: str, source: Path) -> Path:
    """The image of an id: ``JPEGImages/<id>`` with any image extension (Datumaro keeps the original one)."""
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        path = base.safe_join(folder, name + ext, source)
        if path.is_file():
            return path
    raise DataError(f"{source}: image {name!r} is not in {folder} (as any of {', '.join(IMAGE_EXTENSIONS)}); "
                    "export from CVAT with 'Save images' on")


def _open_xml(root: Path, given: ClassSpec | None) -> base.DatasetIndex:
    path = root / "annotations.xml"
    export: XmlExport = parse_cvat_xml(path)
    labels, notes = labels_in_order(export.labels, given, path)
    values = {name: k for k, (name, _) in enumerate(labels)}
    by_subset: dict[str, list[Sample]] = {}
    records = {}
    for entry in export.images:
        folder = root / "images" / entry.subset if entry.subset and (root / "images" / entry.subset).is_dir() \
            else root / "images"
        image = base.safe_join(folder, entry.name, path)
        if not image.is_file():
            raise DataError(f"{path}: image {entry.name!r} is not in {folder}; export from CVAT with 'Save images' "
                            "on, or copy the task's images there")
        if str(image) in records:
            raise DataError(f"{path}: image {entry.name!r} is listed twice")
        shapes = []
        for z_order, position, kind, label, geometry in sorted(entry.shapes, key=lambda s: (s[0], s[1])):
            if label not in values:
                raise DataError(f"{path}: image {entry.name!r} has a {kind} labelled {label!r}, which is not a label "
                                f"in <meta> ({', '.join(values)}); fix the label or the export")
            shapes.append((z_order, position, kind, values[label], geometry))
        records[str(image)] = (entry.height, entry.width, shapes)
        by_subset.setdefault(entry.subset or "default", []).append(Sample(image, path))
    if export.skipped:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(export.skipped.items()))
        notes.append(f"cvat: skipped shapes that paint no pixels ({kinds}); only polygons and masks are read")
    spec = _spec(labels, given, path)
    splits = _splits(root, by_subset, notes)
    return base.DatasetIndex(root, "cvat", spec, splits, CvatXmlReader(spec, records), notes=notes)


@base.register_format("cvat", detect=detect_cvat, detect_order=15,
                      description="CVAT export: Segmentation mask 1.1 (labelmap.txt + SegmentationClass/) or "
                                  "CVAT for images 1.1 (annotations.xml + images/)")
def open_cvat(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: the export's labels, background first. Colour masks decoded exactly; XML polygons and masks
    painted in z-order (polygons need ``pip install 'pixelwise[coco]'``); option ``layout=masks|xml``."""
    options = base.take_options("cvat", options, {"layout": ("masks", "xml")})
    layout = options.get("layout")
    if layout is None:
        found = [name for name, present in (("masks", _has_masks(root)), ("xml", _has_xml(root))) if present]
        if len(found) != 1:
            raise ConfigError(f"{root}: " + ("holds both CVAT exports; choose one with --format cvat:layout=masks "
                                             "or cvat:layout=xml" if found else "no CVAT export found "
                                             "(labelmap.txt + SegmentationClass/, or annotations.xml)"))
        layout = found[0]
    given = base.given_classes(root, classes)
    return _open_masks(root, given) if layout == "masks" else _open_xml(root, given)
