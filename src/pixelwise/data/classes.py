"""Class names, display colours and the ignore index of a dataset.

A dataset's classes come from a ``classes.yaml`` beside the data or from a built-in preset::

    classes:                      # index = position in this list
      - {name: sky, color: [128, 128, 128]}
      - {name: building, color: [128, 0, 0]}
    ignore_index: 11              # optional: a mask value that loss and metrics skip
    values: [0, 255]              # optional: the mask value of each class when it is not its index

>>> from pixelwise.data.presets import get_preset
>>> spec = get_preset("camvid")
>>> spec.num_classes, spec.names[3], spec.ignore_index
(11, 'road', 11)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pixelwise.core.constants import MAX_CLASSES
from pixelwise.core.errors import DataError
from pixelwise.core.files import write_text
from pixelwise.core.registry import Registry
from pixelwise.core.yamlfile import read_yaml


class ClassInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    color: tuple[int, int, int]

    @field_validator("color")
    @classmethod
    def _in_range(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if not all(0 <= c <= 255 for c in v):
            raise ValueError(f"colour {list(v)} has a component outside 0..255")
        return v


class ClassSpec(BaseModel):
    """The classes of a dataset: ``classes[i]`` is the class of mask value ``i``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    classes: list[ClassInfo] = Field(min_length=1)
    ignore_index: int | None = Field(None, ge=0, le=65535)
    # The value each class has in the mask files, when it is not the class index (binary masks saved
    # as 0/255, say). Class ids inside pixelwise are always 0..num_classes-1.
    values: list[int] | None = None

    @model_validator(mode="after")
    def _values_fit(self) -> ClassSpec:
        if self.values is not None:
            if len(self.values) != len(self.classes):
                raise ValueError(f"values has {len(self.values)} entries for {len(self.classes)} classes")
            if len(set(self.values)) != len(self.values) or not all(0 <= v <= 65535 for v in self.values):
                raise ValueError("values must be distinct integers 0..65535")
            if self.ignore_index in self.values:
                raise ValueError(f"ignore_index {self.ignore_index} is also the value of a class")
        return self

    @property
    def mask_values(self) -> list[int]:
        """The stored mask value of each class (its index unless ``values`` says otherwise)."""
        return self.values if self.values is not None else list(range(len(self.classes)))

    @field_validator("classes")
    @classmethod
    def _not_too_many(cls, v: list[ClassInfo]) -> list[ClassInfo]:
        if len(v) > MAX_CLASSES:
            raise ValueError(f"{len(v)} classes; pixelwise supports at most {MAX_CLASSES}")
        return v

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def palette(self) -> np.ndarray:
        """``(num_classes, 3)`` uint8 RGB colours, row ``i`` for class ``i``."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    @classmethod
    def from_lists(
        cls, names: list[str], colors: list[tuple[int, int, int]] | None = None, ignore_index: int | None = None
    ) -> ClassSpec:
        colors = colors or default_palette(len(names))
        return cls(
            classes=[ClassInfo(name=n, color=tuple(c)) for n, c in zip(names, colors, strict=True)],
            ignore_index=ignore_index,
        )

    def to_yaml(self, path: str | Path) -> None:
        data = {"classes": [{"name": c.name, "color": list(c.color)} for c in self.classes]}
        if self.ignore_index is not None:
            data["ignore_index"] = self.ignore_index
        if self.values is not None:
            data["values"] = list(self.values)
        write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))  # all or nothing


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours for ``n`` classes (the Pascal VOC bit-interleaving scheme)."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i + 1  # start at 1 so class 0 is not black, which reads as "void" to most users
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


def load_classes(path: str | Path) -> ClassSpec:
    """Read and validate a ``classes.yaml``; errors name the file and the bad entry."""
    path = Path(path)
    data = read_yaml(path, DataError, "classes file not found; write one or pass --classes PRESET")
    try:
        spec = ClassSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "top level"
        raise DataError(f"{path}: {where}: {err['msg']} (see the classes.yaml schema in the README)") from None
    check_distinct(spec, path)
    return spec


def check_distinct(spec: ClassSpec, source: str | Path) -> None:
    """Raise a DataError naming both classes when two share a name, or a colour.

    Two classes of one name make every report and prediction ambiguous; two of one colour make a colour
    mask ambiguous (the lower id takes every pixel of it) and a painted prediction unreadable. One
    exception: a built-in preset's own table, as ``datasets convert`` writes it. The official Cityscapes
    label-id table gives ids 0..4 (all void) one colour, and 'pole' and 'polegroup' another; those
    colours are kept because colour masks painted with that table use them.

    >>> check_distinct(ClassSpec.from_lists(["car", "car"]), "c.yaml")
    Traceback (most recent call last):
    ...
    pixelwise.core.errors.DataError: c.yaml: classes 0 'car' and 1 'car' share the name 'car'; rename one
    """
    for what, fix in (("name", "rename one"), ("colour", "give one another colour")):
        if what == "colour" and _is_preset_table(spec):
            continue
        first: dict[object, int] = {}
        for i, info in enumerate(spec.classes):
            key = info.name if what == "name" else info.color
            if key in first:
                j = first[key]
                shown = repr(key) if what == "name" else str(list(key))
                raise DataError(f"{source}: classes {j} {spec.classes[j].name!r} and {i} {info.name!r} share the "
                                f"{what} {shown}; {fix}")
            first[key] = i


def _is_preset_table(spec: ClassSpec) -> bool:
    """The classes (names and colours, in order) are those of a registered preset."""
    return any(spec.classes == PRESETS.get(name).classes for name in PRESETS.names())


# Named class lists (``--classes camvid``). Registered by the modules that define them (data/presets.py,
# data/label_tables.py); looked up through :mod:`pixelwise.data.presets`, which imports them all.
PRESETS: Registry[ClassSpec] = Registry("class preset", hint="or give a path to a classes.yaml")


def register_preset(name: str, spec: ClassSpec) -> ClassSpec:
    """Make ``spec`` available as ``--classes NAME``."""
    return PRESETS.add(name, spec)
