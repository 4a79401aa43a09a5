"""Run-length encoded masks, as in Kaggle segmentation CSVs.

An RLE string is ``"start length start length ..."``: 1-based start pixels and run lengths of the
pixels that are set. Pixels are numbered column by column (``order="F"``, the Kaggle convention: top to
bottom, then left to right) or row by row (``order="C"``). An empty cell (``""``, ``nan``) is an
empty mask.

>>> import numpy as np
>>> mask = np.array([[0, 1, 1, 0],
...                  [0, 1, 0, 0],
...                  [1, 1, 0, 0]], np.uint8)
>>> rle_encode(mask), rle_encode(mask, order="C")
('3 5', '2 2 6 1 9 2')
>>> bool((rle_decode("3 5", (3, 4)) == mask).all())
True
>>> rle_decode("3 5 7 2", (3, 4), where="train.csv row 17")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pixelwise.core.errors.DataError: train.csv row 17: RLE run 2 starts at pixel 7, not after the end of run 1 ...
"""

from __future__ import annotations

import math

import numpy as np

from pixelwise.core.errors import DataError

# What an empty CSV cell looks like once read: pandas gives NaN, csv.reader gives "" (or "nan" when
# the file was written from pandas with the NaN as text).
_EMPTY = ("", "nan", "none")


def _fail(where: str, message: str) -> DataError:
    return DataError(f"{where}: {message}" if where else message)


def _check_order(order: str) -> None:
    if order not in ("F", "C"):
        raise ValueError(f"order must be 'F' (column-major, Kaggle) or 'C' (row-major), got {order!r}")


def _parses(token: str) -> bool:
    try:
        np.array([token], dtype=np.int64)
    except (ValueError, OverflowError):
        return False
    return True


def _runs(rle: str, n_pixels: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate; returns 0-based starts and lengths."""
    tokens = rle.split()
    try:
        values = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        bad = next((t for t in tokens if not _parses(t)), tokens[0])
        problem = "is far too large" if bad.lstrip("+-").isdigit() else "is not an integer"
        raise _fail(where, f"RLE value {bad!r} {problem}; expected 'start length start length ...'") from None
    if len(values) % 2:
        raise _fail(where, f"RLE has {len(values)} numbers, an odd count; it must be start/length pairs")
    starts, lengths = values[0::2], values[1::2]

    def first(bad: np.ndarray) -> int:
        return int(np.flatnonzero(bad)[0])

    if (starts < 1).any():
        i = first(starts < 1)
        raise _fail(where, f"RLE run {i + 1} starts at pixel {starts[i]}; starts are 1-based, so at least 1")
    if (lengths < 1).any():
        i = first(lengths < 1)
        raise _fail(where, f"RLE run {i + 1} has length {lengths[i]}; lengths must be at least 1")
    # start + length - 1 > n, written so that huge values cannot overflow int64.
    past = (starts > n_pixels) | (lengths > n_pixels + 1 - np.minimum(starts, n_pixels))
    if past.any():
        i = first(past)
        raise _fail(where, f"RLE run {i + 1} (start {starts[i]}, length {lengths[i]}) goes past the image's "
                           f"{n_pixels} pixels; check the image size and the pixel order (column- or row-major)")
    ends = starts + lengths - 1  # 1-based, inclusive
    overlap = starts[1:] <= ends[:-1]
    if overlap.any():
        i = first(overlap) + 1
        raise _fail(where, f"RLE run {i + 1} starts at pixel {starts[i]}, not after the end of run {i} (pixel "
                           f"{ends[i - 1]}); runs must be sorted and must not overlap")
    return starts - 1, lengths


def rle_decode(rle: str | float | None, shape: tuple[int, int], order: str = "F", where: str = "") -> np.ndarray:
    """An RLE string to a uint8 0/1 mask of ``shape`` (H, W); malformed input raises :class:`DataError`
    whose message starts with ``where`` (e.g. ``"train.csv row 17"``)."""
    _check_order(order)
    height, width = shape
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) and height > 0
            and width > 0):
        raise _fail(where, f"image size {shape} is not two positive integers (height, width)")
    if rle is None or (isinstance(rle, float) and math.isnan(rle)):
        return np.zeros(shape, np.uint8)
    if not isinstance(rle, str):
        raise _fail(where, f"RLE must be text, got {type(rle).__name__} {rle!r}")
    if rle.strip().lower() in _EMPTY:
        return np.zeros(shape, np.uint8)
    n_pixels = int(height) * int(width)
    starts, lengths = _runs(rle, n_pixels, where)
    # +1 where a run starts, -1 just after it ends; the running sum is then 1 inside runs and 0 outside.
    # Touching runs (one ends where the next starts) put -1 and +1 in one slot: two separate updates, so
    # both count.
    steps = np.zeros(n_pixels + 1, np.int8)
    steps[starts] += 1
    steps[starts + lengths] -= 1
    flat = np.cumsum(steps[:-1], dtype=np.int8).view(np.uint8)
    return np.ascontiguousarray(flat.reshape((int(height), int(width)), order=order))


def rle_encode(mask: np.ndarray, order: str = "F") -> str:
    """Nonzero pixels of a 2-D mask as an RLE string (``""`` when none is set); inverse of :func:`rle_decode`."""
    _check_order(order)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    flat = mask.ravel(order=order) != 0
    # Pad with a 0 on both sides so every run has a rising and a falling edge.
    edges = np.diff(np.concatenate(([False], flat, [False])).view(np.int8))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts
    pairs = np.column_stack((starts + 1, lengths)).ravel()
    return " ".join(map(str, pairs.tolist()))


def merge_rles(rles: list[tuple[str | float | None, int]], shape: tuple[int, int], order: str = "F",
               where: str = "") -> np.ndarray:
    """Several ``(rle, class value)`` rows of one image merged into a uint8 class mask (0 elsewhere).

    Rows are painted in the order given, so where runs of two rows overlap, the later row wins.
    Errors name ``where`` and the row's position in ``rles`` (1-based).
    """
    out = np.zeros(shape, np.uint8)
    for k, (rle, value) in enumerate(rles, start=1):
        row = f"{where} (entry {k})" if where else f"entry {k}"
        if not 0 <= int(value) <= 255:
            raise _fail(row, f"class value {value} does not fit a uint8 mask (0..255)")
        out[rle_decode(rle, shape, order, row).view(bool)] = value
    return out
