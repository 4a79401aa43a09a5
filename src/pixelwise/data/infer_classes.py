"""Classes read off the masks, for a dataset that has no ``classes.yaml`` and no ``--classes``.

Only what the masks make unambiguous is inferred, from up to :data:`MAX_MASKS_READ` masks spread over
the whole set (every split), read in full:

* only the values 0 and 255: the ``binary-255`` preset (background, foreground); only 0 and 1: ``binary``;
* at most :data:`MAX_INFERRED_CLASSES` values, all below 255: one class per value, named
  ``class_<value>``, with ``values`` when they are not 0..n-1;
* the values 0..k and 255: 255 is the ignore value (the usual convention, as in Pascal VOC).

Anything else is refused with one line saying what the masks hold: many values or colours (JPEG
compression and resizing smear the edges of a mask into new values), 255 beside values that are not
0..k (a class, or ignore?), a single value, or colour masks, which index-mask layouts cannot read.
The classes are only numbered, never named: the note asks for a ``classes.yaml`` to name them.

>>> import tempfile
>>> from pathlib import Path
>>> from pixelwise.data.io import write_png
>>> folder = Path(tempfile.mkdtemp())
>>> for i in range(3):
...     write_png(folder / f"{i}.png", np.array([[0, 1], [2, 5]], np.uint8))
>>> inferred = infer_classes(sorted(folder.glob("*.png")), folder)
>>> inferred.spec.names, inferred.spec.values
(['class_0', 'class_1', 'class_2', 'class_5'], [0, 1, 2, 5])
>>> inferred.note
'classes: inferred from 3 masks: class_0, class_1, class_2, class_5 (values 0/1/2/5); write a classes.yaml to name them'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pixelwise.core.constants import MASK_IGNORE
from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.presets import get_preset

# Enough to meet every class of a typical dataset, few enough to take about a second on large masks.
MAX_MASKS_READ = 200
# More distinct values than this reads as smeared (JPEG, interpolation), not as a list of classes.
MAX_INFERRED_CLASSES = 32

NO_CLASSES = "no classes.yaml found"
ADVICE = "write one beside the data (see README) or pass --classes PRESET|PATH"


@dataclass(frozen=True)
class InferredClasses:
    """The classes read off the masks, and the line that tells the user so (the caller shows it)."""

    spec: ClassSpec
    note: str


def no_classes_error(root: Path, seen: str = "", advice: str = ADVICE) -> DataError:
    """The one-line error of a dataset without classes; ``seen`` says why the masks could not tell them."""
    return DataError(f"{root}: {NO_CLASSES}" + (f", and {seen}" if seen else "") + f"; {advice}")


def spread(items: Sequence[Path], count: int) -> list[Path]:
    """``count`` items evenly spread over ``items`` (all of them when there are no more).

    >>> spread(list("abcdefgh"), 4)
    ['a', 'c', 'e', 'g']
    """
    if len(items) <= count:
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def read_mask_values(path: Path) -> tuple[np.ndarray, bool]:
    """The distinct values of one mask file and whether it is a colour image (values then pack RGB
    as ``r << 16 | g << 8 | b``)."""
    try:
        with Image.open(path) as im:
            colour = im.mode in ("RGB", "RGBA")
    except (OSError, ValueError):  # unreadable: read_mask below raises the error that names the file
        colour = False
    if colour:
        rgb = read_image(path).astype(np.uint32)
        return np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]), True
    mask = read_mask(path)
    if mask.dtype == np.uint8:  # bincount: about twice as fast as np.unique on 8-bit masks
        return np.flatnonzero(np.bincount(mask.ravel(), minlength=256)), False
    return np.unique(mask), False


def infer_classes(masks: Sequence[Path], root: Path) -> InferredClasses:
    """Classes of index masks, inferred from up to :data:`MAX_MASKS_READ` of ``masks`` spread over them;
    a DataError (one line saying what the masks hold) when the masks leave them ambiguous."""
    chosen = spread(masks, MAX_MASKS_READ)
    if not chosen:
        raise no_classes_error(root)
    values: set[int] = set()
    colour = False
    for read, path in enumerate(chosen, 1):
        found, is_colour = read_mask_values(path)
        if found.dtype.kind not in "ui":
            raise no_classes_error(root, f"{path.name} holds {found.dtype} values, not integer class values")
        colour |= is_colour
        values.update(found.tolist())
        if len(values) > MAX_INFERRED_CLASSES:
            raise too_many_error(root, len(values), read, colour)  # reading more would only count them
    if colour:
        raise no_classes_error(root, f"the masks are colour images ({len(values)} colours), which this layout "
                                     "does not read (it reads index masks: one class id per pixel)",
                               "convert the masks to index PNGs and write a classes.yaml, or use a colour-mask layout")
    spec, meaning = classes_for_values(sorted(values), root)
    names = ", ".join(spec.names[:8]) + (f" and {spec.num_classes - 8} more" if spec.num_classes > 8 else "")
    return InferredClasses(spec, f"classes: inferred from {len(chosen)} masks: {names} ({meaning}); "
                                 "write a classes.yaml to name them")


def too_many_error(root: Path, count: int, read: int, colour: bool) -> DataError:
    """More values than classes can be: the edges of the masks were smeared into new values."""
    masks = f"{read} mask{'s' if read > 1 else ''}"
    if colour:
        return no_classes_error(
            root, f"the masks hold more than {MAX_INFERRED_CLASSES} colours ({count} in {masks} read), as "
                  "JPEG-compressed colour masks would",
            "this layout reads index masks: convert them to index PNGs, each colour to its nearest class colour")
    return no_classes_error(
        root, f"the masks hold more than {MAX_INFERRED_CLASSES} values ({count} in {masks} read), as "
              "JPEG-compressed or resized (interpolated) masks would",
        "write a classes.yaml (and check the masks: they should hold class ids)")


def classes_for_values(values: list[int], root: Path) -> tuple[ClassSpec, str]:
    """The classes of masks holding exactly ``values`` (sorted, at most :data:`MAX_INFERRED_CLASSES`),
    and what was made of the values, for the note."""
    shown = "/".join(map(str, values))
    if len(values) < 2:
        raise no_classes_error(root, f"every mask read holds only the value {values[0]}, so there is nothing to learn")
    if values[0] < 0 or values[-1] > MASK_IGNORE:
        raise no_classes_error(root, f"the masks hold the values {shown}, beyond the 0..255 that are inferred")
    if values == [0, 255]:
        return get_preset("binary-255"), "values 0/255"
    if values[-1] == MASK_IGNORE:
        rest = values[:-1]
        if rest != list(range(len(rest))):
            raise no_classes_error(root, f"the masks hold the values {shown}: is 255 a class or the ignore "
                                         "value? (255 is read as ignore only beside 0..k)")
        spec = classes_for_values(rest, root)[0]
        return ClassSpec(classes=spec.classes, ignore_index=MASK_IGNORE), \
            f"values {shown}; 255 read as ignore, the usual convention"
    if values == [0, 1]:
        return get_preset("binary"), "values 0/1"
    spec = ClassSpec.from_lists([f"class_{v}" for v in values])  # colours: default_palette
    if values != list(range(len(values))):
        spec = ClassSpec(classes=spec.classes, values=values)
    return spec, f"values {shown}"
