"""Run-length encoded masks in a CSV file (Kaggle style: ships, steel defects, cells, buildings).

The layout: one ``*.csv`` with a header holding ``ImageId`` and ``EncodedPixels`` (and optionally a
class column such as ``ClassId``) beside a folder of images. Several rows of one image merge into one
mask (a later row wins where runs overlap); images without any row, or with an empty
``EncodedPixels``, are all background (0). Without a class column, every run is class 1.

Options (``--format rle-csv:key=value,...``): ``csv=NAME`` when the folder holds several CSV files,
``images=FOLDER`` (default: the only image folder), ``order=F`` (Kaggle: column-major, the default) or
``C`` (row-major), ``class_column=NAME``. Classes: ``classes.yaml`` or ``--classes``; without them,
the ``binary`` preset when the CSV has no class column, else ``background`` plus one class per class
value found in the CSV, named ``class_<value>`` in value order (a note says so: name them in a
classes.yaml). Splits: ``train.txt`` / ``val.txt`` beside the CSV, else every 10th image goes to val.

>>> detect_rle_csv(Path("/nonexistent"))
False
>>> spec, note = classes_from_values({3: 2, 1: 2}, "ClassId", Path("train.csv"))
>>> spec.names, spec.values
(['background', 'class_1', 'class_3'], [0, 1, 3])
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import base
from pixelwise.data.io import IMAGE_EXTENSIONS
from pixelwise.data.presets import get_preset
from pixelwise.data.rle import merge_rles
from pixelwise.data.sample import Sample, SampleReader, to_class_ids

CLASS_COLUMNS = ("ClassId", "class_id", "class", "category")


def _rle_csvs(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.glob("*.csv")):
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if "EncodedPixels" in header:
            found.append(path)
    return found


def detect_rle_csv(root: Path) -> bool:
    return root.is_dir() and bool(_rle_csvs(root))


class RleCsvReader(SampleReader):
    """Masks decoded from the CSV rows of the sample's image (kept in memory: a few MB even for 200k rows)."""

    def __init__(self, classes, rows: dict[str, list[tuple[str, int, int]]], order: str, csv_path: Path) -> None:
        super().__init__(classes)
        self.rows, self.order, self.csv_path = rows, order, csv_path

    def read_ids(self, sample: Sample) -> np.ndarray:
        shape = self.image_size(sample)
        rows = self.rows.get(sample.image.name, [])
        lines = ", ".join(str(line) for _, _, line in rows[:3]) or "-"
        mask = merge_rles([(rle, value) for rle, value, _ in rows], shape, self.order,
                          where=f"{self.csv_path} row {lines} ({sample.image.name})")
        return to_class_ids(mask, self.classes, f"{self.csv_path} ({sample.image.name})", self.lut)


def _read_rows(path: Path, class_column: str | None) -> tuple[dict[str, list[tuple[str, int, int]]], str | None]:
    """The ``(EncodedPixels, class value, line)`` rows of each ImageId, and the class column used (if any)."""
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if "ImageId" not in header:
            raise DataError(f"{path}: no ImageId column (header: {', '.join(header)})")
        column = class_column or next((c for c in CLASS_COLUMNS if c in header), None)
        if class_column and class_column not in header:
            raise ConfigError(f"{path}: class_column={class_column} is not a column (header: {', '.join(header)})")
        for line, row in enumerate(reader, start=2):
            value = 1
            if column is not None:
                try:
                    value = int(row[column])
                except (TypeError, ValueError):
                    raise DataError(f"{path} row {line}: {column}={row[column]!r} is not an integer class") from None
            rows[row["ImageId"]].append((row.get("EncodedPixels") or "", value, line))
    return rows, column


def classes_from_values(first_line: dict[int, int], column: str, csv_path: Path) -> tuple[ClassSpec, str]:
    """``background`` (value 0) and ``class_<value>`` per class value, in value order, and the note saying so.

    ``first_line`` maps each value to the first CSV line holding it (for the error on a value that cannot
    be a class: 0 is the background of every mask, and masks hold one byte).
    """
    values = sorted(first_line)
    bad = next((v for v in values if not 1 <= v <= 255), None)
    if bad is not None:
        raise DataError(f"{csv_path} row {first_line[bad]}: {column}={bad} cannot be inferred as a class (0 is the "
                        "background, masks hold 1..255); write a classes.yaml giving each class its value")
    names = ["background"] + [f"class_{v}" for v in values]
    spec = ClassSpec.from_lists(names)
    if values != list(range(1, len(values) + 1)):
        spec = ClassSpec(classes=spec.classes, values=[0, *values])
    note = (f"classes: inferred from the {column} column of {csv_path.name}: {', '.join(names)} (values "
            f"{'/'.join(map(str, [0, *values]))}); write a classes.yaml to name them")
    return spec, note


@base.register_format("rle-csv", detect=detect_rle_csv, detect_order=40,
                      description="a CSV with ImageId,EncodedPixels beside an image folder")
def open_rle_csv(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: ``classes.yaml``; without one ``binary``, or with a class column (``ClassId``) ``background`` +
    ``class_<id>`` per id found. Kaggle's ``ImageId,EncodedPixels[,ClassId]``; options ``csv=``, ``images=``,
    ``order=F|C``, ``class_column=``."""
    options = base.take_options("rle-csv", options, {"csv": None, "images": None, "order": ("F", "C"),
                                                "class_column": None})
    csvs = _rle_csvs(root)
    if "csv" in options:
        csv_path = root / options["csv"]
        if not csv_path.is_file():
            raise DataError(f"{csv_path}: CSV file not found")
    elif len(csvs) == 1:
        csv_path = csvs[0]
    else:
        names = ", ".join(p.name for p in csvs) or "none"
        raise ConfigError(f"{root}: choose the CSV with --format rle-csv:csv=NAME (RLE CSV files: {names})")
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and base.files_by_stem(p, IMAGE_EXTENSIONS)]
    if "images" in options:
        image_dir = root / options["images"]
    elif len(folders) == 1:
        image_dir = folders[0]
    else:
        raise ConfigError(f"{root}: choose the image folder with --format rle-csv:images=FOLDER "
                          f"(folders with images: {', '.join(p.name for p in folders) or 'none'})")
    rows, column = _read_rows(csv_path, options.get("class_column"))
    images = {p.name: p for p in base.files_by_stem(image_dir, IMAGE_EXTENSIONS).values()}
    unknown = [name for name in rows if name not in images]
    if unknown:
        line = rows[unknown[0]][0][2]
        raise DataError(f"{csv_path} row {line}: ImageId {unknown[0]} has no image in {image_dir} "
                        f"({len(unknown)} such ids); add the images or remove the rows")
    samples = [Sample(images[name], csv_path) for name in sorted(images)]
    splits = base.split_samples(root, samples)
    spec, notes = base.given_classes(root, classes), []
    if spec is None and column is None:
        spec = get_preset("binary")
    elif spec is None:  # a class column and no classes given: number them off the CSV
        first_line: dict[int, int] = {}
        for image_rows in rows.values():
            for _, value, line in image_rows:
                first_line[value] = min(line, first_line.get(value, line))
        spec, note = classes_from_values(first_line, column, csv_path)
        notes.append(note)
    reader = RleCsvReader(spec, dict(rows), options.get("order", "F"), csv_path)
    return base.DatasetIndex(root, "rle-csv", spec, splits, reader, notes=notes, classes_inferred=bool(notes))
