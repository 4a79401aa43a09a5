"""``pixelwise datasets convert``: any readable layout to the canonical ``folders`` layout (or RLE CSV).

``folders`` output: ``DST/images/<split>/<stem><ext>`` (the original image file, copied byte for
byte when the format stores it as a plain file, else written as PNG), ``DST/masks/<split>/<stem>.png``
(class ids; ignored pixels get the ignore index) and ``DST/classes.yaml``.

``rle-csv`` output: ``DST/images/`` (all splits), ``DST/<split>.txt`` lists and ``DST/masks.csv`` with
``ImageId,EncodedPixels,ClassId`` rows (Kaggle's column-major runs, one row per image and class
present); ignored pixels cannot be stored in RLE and become background (their count is reported).

A labelling tool's pre-annotation format (``label-studio``, ``coco``, ...: any name of
:func:`~pixelwise.data.preannotations.list_preannotation_formats`): ``DST/images/`` (all splits), the
writer's file (e.g. ``label_studio_predictions.json``) with the masks as that tool's regions,
``DST/<split>.txt`` lists and ``DST/classes.yaml``, so the tool imports the labels for correction and the
matching pixelwise format reads them back. Ignored pixels become background there too (counted).

>>> from pixelwise.data.synthetic import write_dataset
>>> import tempfile, os
>>> src = write_dataset(tempfile.mkdtemp(), n_train=2, n_val=1, height=16, width=20)
>>> dst = os.path.join(tempfile.mkdtemp(), "out")
>>> convert_dataset(src, dst).images
3
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.core.constants import MASK_IGNORE
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.core.files import staged_folder
from pixelwise.data.formats import ClassesArg, open_dataset
from pixelwise.data.io import write_png
from pixelwise.data.preannotations import create_preannotation_writer, list_preannotation_formats
from pixelwise.data.rle import rle_encode
from pixelwise.data.sample import SampleReader

TARGETS = ("folders", "rle-csv")  # and every pre-annotation format: see targets()


@dataclass
class ConvertResult:
    destination: Path
    images: int
    ignored_as_background: int = 0  # rle-csv and pre-annotation formats: they cannot store ignore


def targets() -> list[str]:
    """The layouts ``convert`` writes: ``folders``, ``rle-csv`` and every pre-annotation format."""
    return [*TARGETS, *list_preannotation_formats()]


def _plain_image_file(reader: SampleReader) -> bool:
    """True when the reader reads the image file unchanged, so it can be copied byte for byte."""
    return type(reader).read_image is SampleReader.read_image


def convert_dataset(src: str | Path, dst: str | Path, format: str = "auto", classes: ClassesArg = None,
                    to: str = "folders") -> ConvertResult:
    if to not in targets():
        raise ConfigError(f"unknown --target '{to}'; choose one of {', '.join(targets())}")
    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise ConfigError(f"{dst}: already holds files; choose an empty or new destination")
    index = open_dataset(src, format, classes)
    spec, reader = index.classes, index.reader
    if to == "rle-csv" and spec.num_classes > 255:
        raise ConfigError("rle-csv holds at most 255 classes")
    # Build everything in a sibling temporary folder that becomes DST at the end, so an interrupted
    # conversion never leaves a half dataset at DST.
    with staged_folder(dst) as work:
        if to in TARGETS:
            result = (_to_folders if to == "folders" else _to_rle_csv)(index, reader, work)
        else:
            result = _to_preannotations(index, reader, work, to, Path(src).name)
        spec_out = spec
        if spec.ignore_index is None and result.get("ignored", 0) and to == "folders":
            spec_out = spec.model_copy(update={"ignore_index": MASK_IGNORE})  # unmatched colours were ignored
        spec_out.to_yaml(work / "classes.yaml")
    return ConvertResult(dst, result["images"], result.get("ignored", 0) if to != "folders" else 0)


def _stem_map(samples, split: str) -> list[tuple[str, object]]:
    seen: dict[str, Path] = {}
    out = []
    for sample in samples:
        stem = sample.image.stem
        if stem in seen:
            raise DataError(f"{sample.image}: same file name as {seen[stem]} in split '{split}'; "
                            "the folders layout matches images and masks by name")
        seen[stem] = sample.image
        out.append((stem, sample))
    return out


def _to_folders(index, reader: SampleReader, work: Path) -> dict[str, int]:
    ignore_value = index.classes.ignore_index if index.classes.ignore_index is not None else MASK_IGNORE
    images = ignored = 0
    for split, samples in index.splits.items():
        (work / "images" / split).mkdir(parents=True)
        (work / "masks" / split).mkdir(parents=True)
        for stem, sample in _stem_map(samples, split):
            image, ids = reader.load(sample)
            if _plain_image_file(reader):
                shutil.copyfile(sample.image, work / "images" / split / sample.image.name)
            else:
                write_png(work / "images" / split / f"{stem}.png", image)
            is_ignored = ids == MASK_IGNORE
            ignored += int(is_ignored.sum())
            mask = np.where(is_ignored, ignore_value, ids).astype(np.uint16 if ignore_value > 255 else np.uint8)
            write_png(work / "masks" / split / f"{stem}.png", mask)
            images += 1
    return {"images": images, "ignored": ignored}


def _flat_image(reader: SampleReader, sample, stem: str, split: str, image: np.ndarray, work: Path,
                names: dict[str, str]) -> str:
    """Copy (or write as PNG) a sample's image into ``work/images/``, one folder for all splits; its name."""
    name = sample.image.name if _plain_image_file(reader) else f"{stem}.png"
    if name in names and names[name] != split:
        raise DataError(f"{sample.image}: the name {name} appears in splits {names[name]} and {split}; "
                        "this layout keeps all images in one folder")
    names[name] = split
    if _plain_image_file(reader):
        shutil.copyfile(sample.image, work / "images" / name)
    else:
        write_png(work / "images" / name, image)
    return name


def _flat_samples(index, reader: SampleReader, work: Path, counts: dict[str, int]) -> Iterator[tuple[str, np.ndarray]]:
    """Every sample's image copied into ``work/images/`` (one folder for all splits) and its class ids, as
    ``(image name, ids)``; writes ``<split>.txt`` per split and counts ``images`` and ``ignored`` pixels."""
    (work / "images").mkdir()
    names: dict[str, str] = {}
    for split, samples in index.splits.items():
        stems = []
        for stem, sample in _stem_map(samples, split):
            image, ids = reader.load(sample)
            name = _flat_image(reader, sample, stem, split, image, work, names)
            counts["ignored"] += int((ids == MASK_IGNORE).sum())
            counts["images"] += 1
            yield name, ids
            stems.append(Path(name).stem)
        (work / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))


def _to_preannotations(index, reader: SampleReader, work: Path, to: str, source: str) -> dict[str, int]:
    """The masks as a labelling tool's regions (the pre-annotation writer ``to``), images in ``images/``."""
    writer = create_preannotation_writer(to, index.classes, model_version=f"labels of {source}")
    counts = {"images": 0, "ignored": 0}
    for name, ids in _flat_samples(index, reader, work, counts):
        writer.add(Path("images") / name, np.where(ids == MASK_IGNORE, 0, ids).astype(np.uint8))
    writer.write(work)
    return counts


def _to_rle_csv(index, reader: SampleReader, work: Path) -> dict[str, int]:
    counts = {"images": 0, "ignored": 0}
    with (work / "masks.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "EncodedPixels", "ClassId"])
        for name, ids in _flat_samples(index, reader, work, counts):
            for value in range(1, index.classes.num_classes):
                runs = rle_encode(ids == value)
                if runs:
                    writer.writerow([name, runs, value])
    return counts
