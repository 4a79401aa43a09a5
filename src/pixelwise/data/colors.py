"""Colour masks (one RGB colour per class) to class ids, and back.

Many datasets store labels as colour images: every pixel painted with its class colour. Saved as JPEG
or resized, the colours drift, so each pixel is mapped to the *nearest* palette colour, and pixels
farther than ``tolerance`` from every palette colour become ``ignore_value``.

The rule, exactly: with ``d2`` the squared Euclidean RGB distance (an integer), a pixel takes the
palette index with the smallest ``d2`` (ties: the lowest index) and is kept when ``d2 <= tolerance**2``,
i.e. when ``dist <= tolerance``; otherwise it becomes ``ignore_value``. Masks saved as JPEG are better
matched with :func:`jpeg_colors_to_ids`, the same rule on a distance that trusts luma more than chroma.

>>> import numpy as np
>>> palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
>>> mask = np.array([[[3, 2, 1], [250, 10, 0], [120, 120, 120]]], np.uint8)
>>> ids, unknown = colors_to_ids(mask, palette, tolerance=30)
>>> ids.tolist(), unknown
([[0, 1, 255]], 1)
>>> ids_to_colors(ids, palette).tolist()
[[[0, 0, 0], [255, 0, 0], [0, 0, 0]]]
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Protocol

import numpy as np

from pixelwise.core.constants import COLOR_TOLERANCE, MASK_IGNORE
from pixelwise.core.errors import DataError

# Quantisation of the lookup grid: 2 bits per channel dropped -> 64x64x64 cells of 4x4x4 colours. On a
# JPEG-noised 34-colour mask this leaves ~3% of pixels to the exact fallback (32^3 cells: ~7%), and the
# whole call took 1.2 ms instead of 1.7 ms; the price is building the table once per palette and
# tolerance (~75 ms for 34 colours, ~260 ms for 255). Packing every pixel to 24 bits and taking np.unique
# instead costs ~2.4 ms for the unique alone. See benchmarks/bench_colors.py.
_CELL_BITS = 2
_CELLS = 256 >> _CELL_BITS
_MAX_D2 = 3 * 255**2
# Lookup codes above any class id (ids are 0..254).
_FAR = 256  # every colour of the cell is beyond tolerance
_AMBIGUOUS = 257  # the cell's colours may differ in answer: compute exactly per pixel


class _HasPalette(Protocol):
    @property
    def palette(self) -> np.ndarray: ...


def _tolerance_d2(tolerance: float) -> int:
    """The largest integer squared distance that is kept: ``d2 <= tolerance**2`` for integer ``d2``."""
    if math.isnan(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if math.isinf(tolerance):
        return _MAX_D2
    return min(math.floor(float(tolerance) ** 2), _MAX_D2)


def _check_palette(palette: np.ndarray) -> np.ndarray:
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= len(palette) <= 255:
        raise ValueError(f"palette must have shape (N, 3) with 1 <= N <= 255, got {palette.shape}")
    if palette.dtype.kind not in "ui" or palette.min() < 0 or palette.max() > 255:
        raise ValueError("palette colours must be integers 0..255")
    return palette.astype(np.uint8)


def _exact_codes(colors: np.ndarray, palette: np.ndarray, tol_d2: int) -> np.ndarray:
    """Reference answer for ``(K, 3)`` colours: nearest palette index, or ``_FAR`` beyond tolerance."""
    c, p = colors.astype(np.int32), palette.astype(np.int32)
    d2 = (c[:, 0, None] - p[:, 0]) ** 2  # one channel at a time: 3x less memory than a (K, P, 3) array
    d2 += (c[:, 1, None] - p[:, 1]) ** 2
    d2 += (c[:, 2, None] - p[:, 2]) ** 2
    best = d2.argmin(axis=1)  # argmin returns the first minimum: ties go to the lowest index
    best_d2 = np.take_along_axis(d2, best[:, None], axis=1)[:, 0]
    return np.where(best_d2 <= tol_d2, best, _FAR).astype(np.uint16)


def _axis_bounds(palette_channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (cell along one channel, palette colour): min and max squared distance along that channel."""
    lo = (np.arange(_CELLS, dtype=np.int32) << _CELL_BITS)[:, None]
    hi = lo + (1 << _CELL_BITS) - 1
    p = palette_channel.astype(np.int32)[None, :]
    return (np.clip(p, lo, hi) - p) ** 2, np.maximum((p - lo) ** 2, (hi - p) ** 2)


@functools.lru_cache(maxsize=16)
def _cell_lookup(palette_bytes: bytes, tol_d2: int) -> np.ndarray:
    """Per grid cell: the class id every colour in the cell maps to, ``_FAR``, or ``_AMBIGUOUS``.

    Squared distance is a sum of per-channel terms, so its bounds over a box are sums of per-channel
    bounds. A cell is resolved to colour k when k's *largest* distance in the cell is below every other
    colour's *smallest* distance there (then k is strictly nearest for every colour of the cell) and the
    tolerance test gives the same answer at both ends of k's distance range; or when even the smallest
    distance to every colour is beyond tolerance.
    """
    palette = np.frombuffer(palette_bytes, np.uint8).reshape(-1, 3)
    (rmin, rmax), (gmin, gmax), (bmin, bmax) = (_axis_bounds(palette[:, c]) for c in range(3))
    lut = np.empty((_CELLS, _CELLS, _CELLS), np.uint16)
    for r in range(_CELLS):  # one red slab at a time keeps memory small for 255-colour palettes
        dmin = rmin[r] + gmin[:, None, :] + bmin[None, :, :]  # (G, B, P)
        dmax = rmax[r] + gmax[:, None, :] + bmax[None, :, :]
        best = dmax.argmin(axis=-1)
        best_max = np.take_along_axis(dmax, best[..., None], axis=-1)
        best_min = np.take_along_axis(dmin, best[..., None], axis=-1)[..., 0]
        # dmin[best] <= best_max always, so "no other colour can come as close" means exactly one is counted.
        single = np.count_nonzero(dmin <= best_max, axis=-1) == 1
        best_max = best_max[..., 0]
        codes = np.full(best.shape, _AMBIGUOUS, np.uint16)
        kept = single & (best_max <= tol_d2)
        codes[kept] = best[kept]
        codes[(single & (best_min > tol_d2)) | (dmin.min(axis=-1) > tol_d2)] = _FAR
        lut[r] = codes
    lut.flags.writeable = False
    return lut.reshape(-1)


def colors_to_ids(
    mask_rgb: np.ndarray, palette: np.ndarray, tolerance: float = COLOR_TOLERANCE, ignore_value: int = MASK_IGNORE
) -> tuple[np.ndarray, int]:
    """Map each pixel of an ``(H, W, 3)`` uint8 RGB mask to its nearest palette index (module rule).

    Returns ``(ids, unknown)``: uint8 ids of shape ``(H, W)`` and the number of pixels beyond
    ``tolerance`` (set to ``ignore_value``).
    """
    if mask_rgb.ndim != 3 or mask_rgb.shape[2] != 3 or mask_rgb.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W, 3) uint8, got {mask_rgb.shape} {mask_rgb.dtype}")
    if not 0 <= ignore_value <= 255:
        raise ValueError(f"ignore_value must be 0..255, got {ignore_value}")
    palette = _check_palette(palette)
    tol_d2 = _tolerance_d2(tolerance)
    lut = _cell_lookup(palette.tobytes(), tol_d2)

    r, g, b = (mask_rgb[..., c] >> _CELL_BITS for c in range(3))
    bits = 8 - _CELL_BITS
    codes = lut[(r.astype(np.uint32) << (2 * bits)) | (g.astype(np.uint32) << bits) | b].reshape(-1)
    ambiguous = np.flatnonzero(codes == _AMBIGUOUS)  # flat indices: much faster to gather with than a bool mask
    if len(ambiguous):
        # Only the few pixels in ambiguous cells: exact distances, once per distinct colour.
        pixels = np.take(mask_rgb.reshape(-1, 3), ambiguous, axis=0).astype(np.int32)
        packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
        unique, inverse = np.unique(packed, return_inverse=True)
        colors = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], axis=1)
        codes[ambiguous] = _exact_codes(colors, palette, tol_d2)[inverse.reshape(-1)]
    far = codes == _FAR
    unknown = int(np.count_nonzero(far))
    ids = codes.astype(np.uint8)
    if unknown:
        ids[far] = ignore_value
    return ids.reshape(mask_rgb.shape[:2]), unknown


def ids_to_colors(ids: np.ndarray, palette: np.ndarray, void_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Class ids to an ``(H, W, 3)`` uint8 RGB mask; ids without a colour (e.g. 255) get ``void_color``."""
    palette = _check_palette(palette)
    if ids.dtype.kind not in "ui" or (ids.size and ids.min() < 0):
        raise ValueError(f"ids must be non-negative integers, got dtype {ids.dtype}")
    table = np.concatenate([palette, np.array([void_color], np.uint8)])  # last row: every id without a colour
    return table[np.minimum(ids, len(palette))]


# JPEG (JFIF) stores a colour as luma Y and chroma Cb, Cr; these rows turn RGB into them (Cb and Cr's
# offset of 128 cancels in differences).
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
# How much a chroma difference counts against a luma difference when matching JPEG pixels. JPEG keeps Y
# at full resolution but Cb, Cr at half (4:2:0), so at every class boundary the chroma is a blend of both
# sides while the luma is nearly exact. On CamVid composites (benchmarks/check_composite.py, 100 images)
# the share of non-void pixels decoded right was 98.60% at weight 1, 99.13% at 0.25, 99.38% at 0.1,
# 99.47% at 0.05, 99.45% at 0.02 and 97.43% at 0 (colours of equal luma become indistinguishable);
# plain RGB distance gives 98.76%. 0.1 rather than 0.05: a chroma error then still has to stay under
# ~3x the tolerance, so a mask painted with another palette is still found to match nothing.
JPEG_CHROMA_WEIGHT = 0.1


def jpeg_colors_to_ids(
    mask_rgb: np.ndarray, palette: np.ndarray, tolerance: float = COLOR_TOLERANCE, ignore_value: int = MASK_IGNORE,
    chroma_weight: float = JPEG_CHROMA_WEIGHT,
) -> tuple[np.ndarray, int]:
    """:func:`colors_to_ids` for colour masks saved as JPEG: the distance is measured on luma and chroma,
    ``d2 = dY**2 + chroma_weight * (dCb**2 + dCr**2)``, because JPEG smears chroma across boundaries.

    Same rule otherwise: nearest palette colour (ties: the lowest index), ``ignore_value`` when
    ``d2 > tolerance**2``. A colour halfway between red and green in chroma but with green's luma is green:

    >>> palette = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    >>> ids, unknown = jpeg_colors_to_ids(np.array([[[128, 200, 0], [250, 5, 0]]], np.uint8), palette)
    >>> ids.tolist(), unknown
    ([[1, 0]], 0)
    """
    if mask_rgb.ndim != 3 or mask_rgb.shape[2] != 3 or mask_rgb.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W, 3) uint8, got {mask_rgb.shape} {mask_rgb.dtype}")
    if not 0 <= ignore_value <= 255:
        raise ValueError(f"ignore_value must be 0..255, got {ignore_value}")
    palette = _check_palette(palette)
    _tolerance_d2(tolerance)  # the same checks: not NaN, not negative
    tol_d2 = float(tolerance) ** 2  # inf stays inf: nothing is far
    # Each distinct colour once: a 256x256 JPEG mask has a few thousand, not 65536.
    pixels = mask_rgb.reshape(-1, 3).astype(np.int32)
    unique, inverse = np.unique((pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2], return_inverse=True)
    colors = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], axis=1)
    to_space = np.sqrt([1.0, chroma_weight, chroma_weight])[:, None] * _YCBCR  # Euclidean distance there = d2
    x, p = colors @ to_space.T, palette.astype(np.float64) @ to_space.T
    codes = np.empty(len(colors), np.uint16)
    for start in range(0, len(colors), 4096):  # (4096, 255) distances at most: bounded memory
        d2 = ((x[start : start + 4096, None, :] - p[None]) ** 2).sum(-1)
        best = d2.argmin(axis=1)  # the first minimum: ties (equal palette colours) go to the lowest index
        far = np.take_along_axis(d2, best[:, None], axis=1)[:, 0] > tol_d2
        codes[start : start + 4096] = np.where(far, _FAR, best)
    codes = codes[inverse.reshape(-1)]
    far = codes == _FAR
    ids = codes.astype(np.uint8)
    ids[far] = ignore_value
    return ids.reshape(mask_rgb.shape[:2]), int(np.count_nonzero(far))


class ColorMaskDecoder:
    """Decodes a dataset's colour masks with one palette and keeps counts of unmatched pixels.

    A mask in which more than ``max_unknown_fraction`` of the pixels match no palette colour is almost
    surely the wrong palette (or not a label image), so it raises :class:`DataError` naming the file.
    The counters (``files``, ``total_pixels``, ``unknown_pixels``, ``files_with_unknown``) cover the masks
    decoded successfully; with DataLoader workers each worker holds its own copy.
    """

    def __init__(self, classes: np.ndarray | _HasPalette, tolerance: float = COLOR_TOLERANCE,
                 ignore_value: int = MASK_IGNORE, max_unknown_fraction: float = 0.5) -> None:
        palette = classes if isinstance(classes, np.ndarray) else classes.palette
        self.palette = _check_palette(palette)
        self.tolerance = tolerance
        _tolerance_d2(tolerance)  # fail on a bad tolerance now, not at the first mask
        self.ignore_value = ignore_value
        self.max_unknown_fraction = max_unknown_fraction
        self.files = 0
        self.total_pixels = 0
        self.unknown_pixels = 0
        self.files_with_unknown = 0

    def __call__(self, mask_rgb: np.ndarray, path: str | Path, jpeg_chroma_weight: float | None = None) -> np.ndarray:
        """Class ids of one mask: by RGB distance, or for a mask saved as JPEG by :func:`jpeg_colors_to_ids`
        with ``jpeg_chroma_weight``."""
        if mask_rgb.ndim != 3 or mask_rgb.shape[2] not in (3, 4) or mask_rgb.dtype != np.uint8:
            raise DataError(f"{path}: expected an 8-bit RGB colour mask, got shape {mask_rgb.shape} "
                            f"{mask_rgb.dtype}; use an index-mask format for single-channel masks")
        # RGBA masks (common from drawing tools) carry the colour in RGB; alpha says nothing about the class.
        rgb = np.ascontiguousarray(mask_rgb[..., :3])
        if jpeg_chroma_weight is None:
            ids, unknown = colors_to_ids(rgb, self.palette, self.tolerance, self.ignore_value)
        else:
            ids, unknown = jpeg_colors_to_ids(rgb, self.palette, self.tolerance, self.ignore_value, jpeg_chroma_weight)
        if unknown > self.max_unknown_fraction * ids.size:
            raise DataError(f"{path}: {unknown / ids.size:.0%} of the pixels are farther than {self.tolerance:g} "
                            "from every class colour: colours mostly match no palette entry; check --classes / "
                            "the palette")
        self.files += 1
        self.total_pixels += ids.size
        self.unknown_pixels += unknown
        self.files_with_unknown += unknown > 0
        return ids

    def summary(self) -> str | None:
        """A one-line warning about unmatched pixels so far, or None when every pixel matched."""
        if not self.unknown_pixels:
            return None
        share = self.unknown_pixels / self.total_pixels
        return (f"{self.unknown_pixels} of {self.total_pixels} mask pixels ({share:.2%}) in {self.files_with_unknown} "
                f"of {self.files} files match no class colour within {self.tolerance:g}; they are ignored")
