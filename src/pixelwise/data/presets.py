"""Class presets: ``--classes NAME`` instead of a classes.yaml (see :func:`resolve_classes`).

The built-in ones are defined here and in :mod:`pixelwise.data.label_tables` (the Cityscapes, CARLA and
pets tables); importing this module registers them all. A new preset is one
``register_preset(name, ClassSpec...)`` call in a module this one imports.

>>> list_presets()[:3]
['binary', 'binary-255', 'camvid']
>>> get_preset("camvid").names[:2]
['sky', 'building']
"""

from __future__ import annotations

from pathlib import Path

from pixelwise.data import label_tables  # noqa: F401  (registers the Cityscapes, CARLA and pets presets)
from pixelwise.data.classes import PRESETS, ClassInfo, ClassSpec, load_classes, register_preset

_CAMVID = [
    ("sky", (128, 128, 128)),
    ("building", (128, 0, 0)),
    ("pole", (192, 192, 128)),
    ("road", (128, 64, 128)),
    ("pavement", (60, 40, 222)),
    ("tree", (128, 128, 0)),
    ("sign", (192, 128, 128)),
    ("fence", (64, 64, 128)),
    ("car", (64, 0, 128)),
    ("pedestrian", (64, 64, 0)),
    ("bicyclist", (0, 128, 192)),
]

register_preset("camvid", ClassSpec.from_lists([n for n, _ in _CAMVID], [c for _, c in _CAMVID], ignore_index=11))
register_preset("binary", ClassSpec.from_lists(["background", "foreground"], [(0, 0, 0), (255, 255, 255)]))
# Binary masks saved as 0/255 images (microscopy, many tutorials).
register_preset("binary-255", ClassSpec(classes=[ClassInfo(name="background", color=(0, 0, 0)),
                                                 ClassInfo(name="foreground", color=(255, 255, 255))],
                                        values=[0, 255]))


def list_presets() -> list[str]:
    return sorted(PRESETS.names())


def get_preset(name: str) -> ClassSpec:
    """The preset called ``name``; an unknown name is a ConfigError listing them."""
    return PRESETS.get(name)


def resolve_classes(value: str | Path | None, data_root: Path | None = None) -> ClassSpec | None:
    """``--classes`` as given (preset name or yaml path), else ``classes.yaml`` beside the data."""
    if value is not None:
        text = str(value)
        if text in PRESETS:
            return PRESETS.get(text)
        if text.endswith((".yaml", ".yml")) or Path(text).exists():
            return load_classes(text)
        return get_preset(text)
    if data_root is not None and (data_root / "classes.yaml").is_file():
        return load_classes(data_root / "classes.yaml")
    return None
