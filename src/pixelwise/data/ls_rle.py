"""Label Studio's brush RLE: the run-length code of a brush region's RGBA canvas.

A ``brushlabels`` result stores its region as ``value.rle``, a list of bytes. They are a bit stream
(most significant bit first) in the ``rle-pack`` format of thi.ng/umbrella, which Label Studio's frontend
uses and ``label_studio_converter.brush`` re-implements:

* a header: 32 bits ``num`` (how many values follow: height x width x 4, the RGBA bytes of the canvas),
  5 bits ``word_size - 1``, then four 4-bit ``size - 1`` fields: the bit widths ``rle_sizes`` a run
  length may be written with;
* records until ``num`` values are out: 1 bit ``repeat``, 2 bits picking one of the ``rle_sizes``, that
  many bits ``count - 1``; then one word repeated ``count`` times (``repeat = 1``) or ``count`` words
  written out (``repeat = 0``).

A pixel belongs to the region where its alpha (the 4th value) is above 128, the threshold Label Studio's
own ``image2rle`` uses. The decoder is written here rather than taken from label-studio-converter: that
package reads the stream one bit at a time through Python strings (seconds per large mask) and pulls in
Label Studio's SDK; this one reads each field with one integer conversion and fills runs with numpy.

>>> mask = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)
>>> rle = encode_brush(mask)
>>> rle[:4]          # the header starts with num = 2 x 3 x 4 = 24 values
[0, 0, 0, 24]
>>> decode_brush(rle, 2, 3).astype(int).tolist()
[[0, 1, 1], [0, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelwise.core.errors import DataError

ALPHA_THRESHOLD = 128  # alpha > this: the pixel is in the region (label_studio_converter's image2rle)
_RLE_SIZES = (3, 4, 8, 16)  # the bit widths the encoder offers for run lengths (those Label Studio's tools use)


class _Bits:
    """Reads big-endian bit fields from a byte string; running past the end is a DataError."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where
        self.total = len(data) * 8

    def read(self, n: int) -> int:
        if self.pos + n > self.total:
            raise DataError(f"{self.where}: brush RLE ends early (needs bit {self.pos + n} of {self.total}); "
                            "the export is truncated or not Label Studio's RLE")
        first, last = self.pos // 8, (self.pos + n + 7) // 8
        chunk = int.from_bytes(self.data[first:last], "big")
        shift = last * 8 - self.pos - n
        self.pos += n
        return (chunk >> shift) & ((1 << n) - 1)


def decode_values(rle: Sequence[int], where: str = "") -> np.ndarray:
    """All values of the stream (``num`` of them; RGBA bytes for a brush region)."""
    try:
        data = bytes(rle)
    except (TypeError, ValueError):
        raise DataError(f"{where}: brush RLE must be a list of bytes (integers 0..255)") from None
    bits = _Bits(data, where)
    num, word_size = bits.read(32), bits.read(5) + 1
    rle_sizes = [bits.read(4) + 1 for _ in range(4)]
    if num > bits.total * 2**14:  # a record takes >= 4 bits and gives <= 2**16 values: a corrupt header
        raise DataError(f"{where}: brush RLE header says {num} values, more than its {len(data)} bytes can "
                        "hold; the export is corrupt")
    out = np.zeros(num, np.uint8 if word_size <= 8 else np.uint16 if word_size <= 16 else np.uint32)
    i = 0
    while i < num:
        repeat = bits.read(1)
        count = bits.read(rle_sizes[bits.read(2)]) + 1
        end = min(i + count, num)  # a last run may overshoot num; rle-pack stops at num too
        if repeat:
            out[i:end] = bits.read(word_size)
        else:
            for k in range(i, i + count):  # literal words: each one read, those past num dropped
                value = bits.read(word_size)
                if k < num:
                    out[k] = value
        i = end
    return out


def decode_brush(rle: Sequence[int], height: int, width: int, where: str = "") -> np.ndarray:
    """The ``(height, width)`` boolean mask of a brush region: alpha above :data:`ALPHA_THRESHOLD`."""
    values = decode_values(rle, where)
    if values.size != height * width * 4:
        raise DataError(f"{where}: brush RLE holds {values.size} values, but original_width x original_height "
                        f"x 4 (RGBA) = {width} x {height} x 4 = {height * width * 4}; the sizes do not match")
    return values.reshape(height, width, 4)[..., 3] > ALPHA_THRESHOLD


def _fields(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The header and one repeat record per run, as ``(values, bit widths)`` of consecutive fields."""
    pixels = mask.ravel().astype(bool)
    # Runs of pixels; every pixel is 4 equal values (R = G = B = A, as label_studio_converter's mask2rle).
    starts = np.concatenate(([0], np.flatnonzero(pixels[1:] != pixels[:-1]) + 1))
    lengths = np.diff(np.concatenate((starts, [pixels.size]))) * 4
    values = np.where(pixels[starts], 255, 0).astype(np.int64)
    # A run longer than 2**16 values is split: the widest length field holds 16 bits.
    pieces = -(-lengths // 2**16)
    values = np.repeat(values, pieces)
    run = np.repeat(lengths, pieces)
    offset = np.arange(values.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    counts = np.minimum(run - offset * 2**16, 2**16)
    widths = np.array(_RLE_SIZES)
    size_index = np.searchsorted(2 ** widths, counts)  # the narrowest width that holds count - 1
    header_values = [pixels.size * 4, 8 - 1, *(w - 1 for w in _RLE_SIZES)]
    header_widths = [32, 5, 4, 4, 4, 4]
    record = np.stack([np.ones_like(counts), size_index, counts - 1, values], axis=1).ravel()
    record_widths = np.stack([np.ones_like(counts), np.full_like(counts, 2), widths[size_index],
                              np.full_like(counts, 8)], axis=1).ravel()
    return (np.concatenate((header_values, record)).astype(np.int64),
            np.concatenate((header_widths, record_widths)).astype(np.int64))


def encode_brush(mask: np.ndarray) -> list[int]:
    """A boolean ``(H, W)`` mask as Label Studio brush RLE bytes (every RGBA value 255 inside, 0 outside)."""
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    values, widths = _fields(mask)
    # Every field to its bits, most significant first, then packed into bytes (the tail padded with 0).
    field = np.repeat(np.arange(values.size), widths)
    within = np.arange(field.size) - np.repeat(np.cumsum(widths) - widths, widths)
    bits = (values[field] >> (widths[field] - 1 - within)) & 1
    return np.packbits(bits.astype(np.uint8)).tolist()
