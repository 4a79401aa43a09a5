"""Lyft-Udacity challenge / CARLA: ``CameraRGB/`` + ``CameraSeg/``, the class id in the red channel.

``--classes carla`` (default) keeps CARLA's 13 classes; ``--classes carla-reduced`` gives the
challenge's other / road / vehicle (lane markings count as road). The set has no official split:
``train.txt`` / ``val.txt`` beside the folders are used when present, else every 10th image is val.
Several parts (``dataA/``, ``dataB/``...) each holding the two folders are read together.

>>> detect_carla(Path("/nonexistent"))
False
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelwise.core.errors import ConfigError
from pixelwise.data.formats import base
from pixelwise.data.label_tables import carla_reduced_lookup
from pixelwise.data.presets import get_preset
from pixelwise.data.sample import LookupReader, Sample

NUM_CARLA = 13


def _parts(root: Path) -> list[Path]:
    if (root / "CameraRGB").is_dir():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "CameraRGB").is_dir())


def detect_carla(root: Path) -> bool:
    return root.is_dir() and bool(_parts(root))


def index_carla(root: Path) -> dict[str, list[Sample]]:
    samples = [s for part in _parts(root) for s in base.pair_by_stem(part / "CameraRGB", part / "CameraSeg")]
    return base.split_samples(root, samples)


@base.register_format("carla", detect=detect_carla, detect_order=30,
                      description="CameraRGB/ + CameraSeg/ (class id in red)")
def open_carla(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Lyft-Udacity challenge / CARLA. Classes: ``carla`` (13, the default) or ``carla-reduced`` (other /
    road / vehicle). Parts in ``dataA/``, ``dataB/``... are read together; splits from ``train.txt`` /
    ``val.txt``, else every 10th image is ``val``."""
    base.take_options("carla", options, {})
    spec = base.classes_or_default(root, classes, "carla")
    if spec == get_preset("carla"):
        table = np.full(256, 256, np.uint16)
        table[:NUM_CARLA] = np.arange(NUM_CARLA)
    elif spec == get_preset("carla-reduced"):
        table = carla_reduced_lookup().astype(np.uint16)
        table[NUM_CARLA:] = 256
    else:
        raise ConfigError("CARLA targets are --classes carla (13 classes) or carla-reduced (other/road/vehicle)")
    reader = LookupReader(spec, table, channel=0, what="CARLA class id (red channel)",
                          valid=f"0..{NUM_CARLA - 1}")
    return base.DatasetIndex(root, "carla", spec, index_carla(root), reader)
