"""Reading and writing images and masks, with errors that name the file.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "m.png")
>>> write_png(path, np.zeros((4, 5), np.uint8))
>>> read_mask(path).shape
(4, 5)
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from pixelwise.core.errors import DataError
from pixelwise.core.files import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")

# OpenCV would spawn its own threads inside every DataLoader worker; the workers are the parallelism.
cv2.setNumThreads(0)


def max_image_pixels() -> int:
    """The most pixels (width x height) an image or mask may have: ``PIXELWISE_MAX_IMAGE_PIXELS``, or
    Pillow's limit (89.5 million): a file whose header claims more is refused before it is decoded, so a
    decompression bomb (a few KB that unpack to gigabytes) cannot exhaust the memory.

    >>> max_image_pixels() == (int(os.environ["PIXELWISE_MAX_IMAGE_PIXELS"])
    ...                        if "PIXELWISE_MAX_IMAGE_PIXELS" in os.environ else Image.MAX_IMAGE_PIXELS)
    True
    """
    value = os.environ.get("PIXELWISE_MAX_IMAGE_PIXELS", "").strip()
    if not value:
        return int(Image.MAX_IMAGE_PIXELS or 0) or 2**63
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"PIXELWISE_MAX_IMAGE_PIXELS={value!r}: give a number of pixels, e.g. 200000000")
    if Image.MAX_IMAGE_PIXELS is not None and int(value) > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = int(value)  # the user raised the limit: Pillow must not refuse below it
    return int(value)


def check_pixels(path: str | Path, width: int, height: int) -> None:
    """Refuse an image whose header claims more than :func:`max_image_pixels`."""
    limit = max_image_pixels()
    if width * height > limit:
        raise DataError(f"{path}: the header claims {width}x{height} pixels, more than the limit of {limit} "
                        "(a decompression bomb?); if the image is real, raise PIXELWISE_MAX_IMAGE_PIXELS")


def _header_size(path: str | Path, data: np.ndarray) -> None:
    """Check the size in the header of an image's bytes (formats Pillow cannot read are left to OpenCV,
    whose own limit is 2^30 pixels)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise DataError(f"{path}: the header claims far more pixels than the limit of {max_image_pixels()} "
                        "(a decompression bomb?); if the image is real, raise PIXELWISE_MAX_IMAGE_PIXELS") from None
    except Exception:  # not Pillow's format, or a corrupt header: OpenCV's decode has the last word
        return
    check_pixels(path, width, height)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB (grey and RGBA images are converted); a file whose header
    claims more than :func:`max_image_pixels` is refused unread."""
    data = np.fromfile(str(path), dtype=np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise DataError(f"{path}: image file not found")
    _header_size(path, data)
    image = decode_image(data)
    if image is None:
        raise DataError(f"{path}: cannot decode this image (corrupt or not an image); replace or remove it")
    return image


def decode_image(data: bytes | np.ndarray) -> np.ndarray | None:
    """The bytes of an image file as ``(H, W, 3)`` uint8 RGB, or None when they do not decode.

    The one decoder behind :func:`read_image` and the server's uploads, so both see the same pixels.

    >>> decode_image(encode_png(np.full((2, 3, 3), 7, np.uint8))).shape, decode_image(b"not an image")
    ((2, 3, 3), None)
    """
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    # Pixels as stored: masks are never EXIF-rotated, so their images must not be either.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path) -> np.ndarray:
    """A label mask as ``(H, W)`` integers: the stored index values, never palette colours.

    PIL keeps the indices of palette ("P" mode) PNGs, as Pascal VOC style masks need.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(path, *im.size)
            if im.mode in ("RGB", "RGBA"):
                raise DataError(f"{path}: mask is a colour image; index masks hold one class id per pixel "
                                "(use a colour-mask format with a palette)")
            mask = np.asarray(im)
            if mask.dtype == bool:  # 1-bit PNGs: binary masks stored as 0/1
                mask = mask.astype(np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: mask file not found") from None
    except Image.DecompressionBombError:
        raise DataError(f"{path}: the header claims far more pixels than the limit of {max_image_pixels()} "
                        "(a decompression bomb?); if the mask is real, raise PIXELWISE_MAX_IMAGE_PIXELS") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode this mask ({e.__class__.__name__}); replace or remove it") from None
    if mask.ndim != 2:
        raise DataError(f"{path}: mask has shape {mask.shape}; expected a single-channel image")
    return mask


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` read from the file header only (cheap)."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DataError(f"{path}: cannot read this file as an image (corrupt?); replace or remove it") from None
    return height, width


def encode_png(array: np.ndarray) -> bytes:
    """An index mask (H, W) or an RGB image (H, W, 3) as PNG bytes (what :func:`write_png` writes)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise DataError(f"cannot encode a {array.shape} {array.dtype} array as PNG")
    return encoded.tobytes()


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an index mask (H, W) or an RGB image (H, W, 3) as PNG, atomically."""
    data = encode_png(array)
    # Not durable: predictions come by the thousand, and an fsync each would cost more than the encoding.
    try:
        with atomic_path(path, durable=False) as tmp:
            tmp.write_bytes(data)
    except OSError as e:
        raise DataError(f"{path}: could not write this file ({e.strerror or e}; is the folder writable?)") from None
