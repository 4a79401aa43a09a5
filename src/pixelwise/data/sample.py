"""A sample of a dataset and the reader that turns it into an image and class ids.

>>> import numpy as np
>>> from pixelwise.data.presets import get_preset
>>> to_class_ids(np.array([[0, 11]], np.uint8), get_preset("camvid"), "m.png").tolist()
[[0, 255]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.core.constants import COLOR_TOLERANCE, MASK_IGNORE, UNKNOWN_VALUE
from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import image_size, read_image, read_mask


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None  # None for unlabelled images (prediction only)


_UNKNOWN = UNKNOWN_VALUE


def class_lookup(spec: ClassSpec) -> np.ndarray:
    """A table from stored mask value (0..65535) to class id, 255 = ignore, 256 = unknown value."""
    lut = np.full(65536, _UNKNOWN, np.uint16)
    lut[spec.mask_values] = np.arange(spec.num_classes)
    if spec.ignore_index is not None:
        lut[spec.ignore_index] = MASK_IGNORE
    return lut


def to_class_ids(mask: np.ndarray, spec: ClassSpec, path: str | Path, lut: np.ndarray | None = None) -> np.ndarray:
    """Stored mask values to uint8 class ids (255 = ignore); unknown values raise naming the file."""
    if mask.dtype.kind not in "ui" or (mask.size and (mask.min() < 0 or mask.max() > 65535)):
        raise DataError(f"{path}: mask values must be integers 0..65535, found dtype {mask.dtype}")
    lut = class_lookup(spec) if lut is None else lut
    ids = lut[mask]
    bad = ids == _UNKNOWN
    if bad.any():
        values = np.unique(mask[bad])
        ignore = f" or the ignore index {spec.ignore_index}" if spec.ignore_index is not None else ""
        raise DataError(f"{path}: mask value {int(values[0])} ({bad.sum()} pixels"
                        f"{', values ' + str(values[:5].tolist()) if len(values) > 1 else ''}) is neither a "
                        f"class {_describe(spec.mask_values)}{ignore}; fix the mask or classes.yaml "
                        "(ignore_index, values)")
    return ids.astype(np.uint8)


def _describe(values: list[int]) -> str:
    if values == list(range(len(values))):
        return f"0..{len(values) - 1}"
    return f"value ({', '.join(map(str, values[:8]))})"


class SampleReader:
    """How a dataset format turns a :class:`Sample` into an image and its class ids.

    This default reads index-mask files; formats whose labels live elsewhere (colour masks, the right
    half of a composite, a CSV of run-length codes) subclass it and override :meth:`read_ids` (and
    :meth:`read_image` / :meth:`image_size` when the image is not a plain file).
    """

    def __init__(self, classes: ClassSpec) -> None:
        self.classes = classes
        self.lut = class_lookup(classes)

    def read_image(self, sample: Sample) -> np.ndarray:
        return read_image(sample.image)

    def image_size(self, sample: Sample) -> tuple[int, int]:
        """``(height, width)`` without decoding the pixels where the format allows it."""
        return image_size(sample.image)

    def read_ids(self, sample: Sample) -> np.ndarray:
        """``(H, W)`` uint8 class ids, 255 = ignore; unknown values raise naming the file."""
        return to_class_ids(read_mask(sample.mask), self.classes, sample.mask, self.lut)

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) uint8 and its class ids (H, W) uint8, checked to match."""
        image = self.read_image(sample)
        if sample.mask is None:
            raise DataError(f"{sample.image}: has no mask; labelled data is needed here")
        ids = self.read_ids(sample)
        check_same_size(sample, ids.shape, image.shape[:2])
        return image, ids


def check_same_size(sample: Sample, mask_hw: tuple[int, ...], image_hw: tuple[int, ...]) -> None:
    if tuple(mask_hw) != tuple(image_hw):
        raise DataError(f"{sample.mask}: mask is {mask_hw[1]}x{mask_hw[0]} but its image is "
                        f"{image_hw[1]}x{image_hw[0]} (WxH); masks must match their images")


def load_pair(sample: Sample, spec: ClassSpec) -> tuple[np.ndarray, np.ndarray]:
    """Image and class ids of an index-mask sample (see :class:`SampleReader`)."""
    return SampleReader(spec).load(sample)


class LookupReader(SampleReader):
    """Masks whose stored values map to classes through a table (Cityscapes label ids to train ids,
    pet trimaps, CARLA's red channel).

    ``table[value]`` is the class id, 255 for ignore, or 256 for a value the format does not define
    (an error naming the file). ``channel`` picks one channel (0 = red) of an RGB mask file.
    """

    def __init__(self, classes: ClassSpec, table: np.ndarray, channel: int | None = None,
                 what: str = "label value", valid: str = "") -> None:
        super().__init__(classes)
        if len(table) < 65536:  # pad so any 16-bit value indexes safely (and is "unknown")
            table = np.concatenate([table, np.full(65536 - len(table), 256, table.dtype)])
        self.table = table.astype(np.uint16)
        self.channel = channel
        self.what = what
        self.valid = valid  # what the format allows, for the error message

    def read_ids(self, sample: Sample) -> np.ndarray:
        raw = read_image(sample.mask)[..., self.channel] if self.channel is not None else read_mask(sample.mask)
        ids = self.table[raw]
        bad = ids == 256
        if bad.any():
            values = np.unique(raw[bad])[:5].tolist()
            valid = f" ({self.valid})" if self.valid else ""
            raise DataError(f"{sample.mask}: {self.what} {values[0]} is not valid{valid}: {int(bad.sum())} pixels, "
                            f"values {values}; fix the mask, or check --format and --classes")
        return ids.astype(np.uint8)


class ColorMaskReader(SampleReader):
    """Colour masks: every pixel painted with its class colour, matched to the nearest palette colour.

    Masks saved as JPEG are matched on luma more than chroma (see
    :func:`~pixelwise.data.colors.jpeg_colors_to_ids`), others by RGB distance. Pixels farther than
    ``tolerance`` from every colour are ignored and counted (see
    :class:`~pixelwise.data.colors.ColorMaskDecoder`); a mask that mostly matches nothing is an error.
    """

    def __init__(self, classes: ClassSpec, tolerance: float = COLOR_TOLERANCE) -> None:
        from pixelwise.data.colors import JPEG_CHROMA_WEIGHT, ColorMaskDecoder

        super().__init__(classes)
        self.decoder = ColorMaskDecoder(classes, tolerance)
        self.jpeg_chroma_weight = JPEG_CHROMA_WEIGHT  # a reader attribute, so the data cache's key follows it

    def decode(self, mask_rgb: np.ndarray, path: str | Path) -> np.ndarray:
        jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
        ids = self.decoder(mask_rgb, path, self.jpeg_chroma_weight if jpeg else None)
        # A class that is also the ignore index (a "void" colour) becomes ignore; unmatched pixels already are.
        return np.where(ids == MASK_IGNORE, MASK_IGNORE, self.lut[ids]).astype(np.uint8)

    def read_ids(self, sample: Sample) -> np.ndarray:
        return self.decode(read_image(sample.mask), sample.mask)


class CompositeReader(ColorMaskReader):
    """One file holds the photo (left half) and its colour mask (right half), as in the pix2pix sets."""

    def _halves(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        both = read_image(sample.image)
        width = both.shape[1]
        if width % 2:
            raise DataError(f"{sample.image}: composite is {width} pixels wide, an odd number; expected photo and "
                            "mask side by side at equal widths (use another --format for plain images)")
        return both[:, : width // 2], both[:, width // 2 :]

    def read_image(self, sample: Sample) -> np.ndarray:
        return self._halves(sample)[0]

    def image_size(self, sample: Sample) -> tuple[int, int]:
        height, width = image_size(sample.image)
        return height, width // 2

    def read_ids(self, sample: Sample) -> np.ndarray:
        return self.decode(self._halves(sample)[1], sample.image)

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        photo, mask = self._halves(sample)  # decode the JPEG once for both halves
        return np.ascontiguousarray(photo), self.decode(mask, sample.image)
