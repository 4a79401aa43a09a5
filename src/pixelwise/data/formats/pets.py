"""Oxford-IIIT Pet: ``images/*.jpg`` with ``annotations/trimaps/*.png`` and the official splits.

Trimap values: 1 pet, 2 background, 3 border. ``--classes pets`` (default) gives background/pet with the
border ignored (``--format pets:border=pet`` or ``border=background`` assigns it instead);
``--classes pets-trimap`` keeps the three regions. Splits: ``train`` = ``annotations/trainval.txt``,
``val`` = ``test`` = ``annotations/test.txt`` (the dataset has no separate validation list).

>>> detect_pets(Path("/nonexistent"))
False
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.formats import base
from pixelwise.data.label_tables import pets_trimap_lookup
from pixelwise.data.presets import get_preset
from pixelwise.data.sample import LookupReader, Sample


def detect_pets(root: Path) -> bool:
    return (root / "annotations" / "trimaps").is_dir() and (root / "images").is_dir()


def _split_stems(path: Path) -> list[str]:
    """``Abyssinian_100 1 1 1`` lines: the first word is the image stem."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def index_pets(root: Path) -> dict[str, list[Sample]]:
    images, trimaps = root / "images", root / "annotations" / "trimaps"
    splits: dict[str, list[Sample]] = {}
    lists = {"train": root / "annotations" / "trainval.txt", "test": root / "annotations" / "test.txt"}
    for split, path in lists.items():
        if path.is_file():
            splits[split] = base.pair_by_stem(images, trimaps, _split_stems(path))
    if not splits:
        raise DataError(f"{root / 'annotations'}: neither trainval.txt nor test.txt found; unpack "
                        "annotations.tar.gz of the Oxford-IIIT Pet dataset there")
    if "test" in splits:
        splits["val"] = splits["test"]
    return splits


@base.register_format("pets", detect=detect_pets, detect_order=20,
                      description="images/ + annotations/trimaps/ + trainval.txt/test.txt")
def open_pets(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Oxford-IIIT Pet. Classes: ``pets`` (background / pet, the default) or ``pets-trimap``; option
    ``border=ignore|pet|background``. ``trainval.txt`` is ``train``, ``test.txt`` is ``val``."""
    options = base.take_options("pets", options, {"border": ("ignore", "pet", "background")})
    spec = base.classes_or_default(root, classes, "pets")
    if spec == get_preset("pets"):
        table = pets_trimap_lookup("binary", options.get("border", "ignore"))
    elif spec == get_preset("pets-trimap"):
        table = pets_trimap_lookup("trimap")
    else:
        raise ConfigError("Oxford pets targets are --classes pets (background/pet) or pets-trimap")
    reader = LookupReader(spec, table, what="trimap value",
                          valid="trimaps hold 1 pet, 2 background, 3 border")
    return base.DatasetIndex(root, "pets", spec, index_pets(root), reader)
