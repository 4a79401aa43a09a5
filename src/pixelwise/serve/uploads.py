"""Uploaded images: checked before any pixel is decoded, then decoded exactly as ``pixelwise predict`` reads files.

Each problem is an :class:`UploadError` carrying the HTTP status the server answers with and one line that
says what is wrong and what to do: empty upload (400), not an image or a format the server does not take
(415), more pixels than ``--max-pixels`` (413, read from the header, so a huge image is refused before it
takes memory), truncated or corrupt data (400). The header is read with Pillow, the pixels with OpenCV.

>>> import numpy as np
>>> from pixelwise.data.io import encode_png
>>> decode_upload(encode_png(np.zeros((4, 6, 3), np.uint8)), "a.png", max_pixels=100).shape
(4, 6, 3)
>>> try:
...     decode_upload(encode_png(np.zeros((40, 60, 3), np.uint8)), "big.png", max_pixels=100)
... except UploadError as e:
...     print(e.status, e)
413 big.png: 60x40 is 2,400 pixels, over this server's limit of 100 (--max-pixels); send a smaller image
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from pixelwise.core.errors import PixelwiseError
from pixelwise.data.io import decode_image

# What Pillow calls the formats `pixelwise predict` reads (MPO: the JPEG variant many cameras write).
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "WEBP": "WebP", "BMP": "BMP"}
ACCEPTED = "PNG, JPEG, TIFF, WebP or BMP"


class UploadError(PixelwiseError):
    """A bad upload; ``status`` is the HTTP status to answer with (4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB pixels of an uploaded image file, or an :class:`UploadError`."""
    if not data:
        raise UploadError(400, f"{name}: the upload is empty; send the image file's bytes in the field 'image'")
    kind = None
    try:
        with warnings.catch_warnings():
            # Pillow warns about images near its own decompression-bomb limit; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height, kind = *im.size, im.format
                check_size(name, width, height, max_pixels)
                if kind not in FORMATS:
                    raise UploadError(415, f"{name}: a {kind} image; send {ACCEPTED}")
    except UnidentifiedImageError:
        raise UploadError(415, f"{name}: not an image ({len(data):,} bytes that no image format reads); "
                               f"send {ACCEPTED}") from None
    except Image.DecompressionBombError:
        raise UploadError(413, f"{name}: far more pixels than this server takes (--max-pixels "
                               f"{max_pixels:,}); send a smaller image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UploadError(400, f"{name}: the image's header is truncated or corrupt "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); send the whole file"
                          ) from None
    # The pixels come from the decoder `pixelwise predict` uses, so the labels are the same. OpenCV refuses
    # cut data (a PNG without its end, a JPEG cut short), where Pillow accepts a PNG that lacks its last chunk.
    image = decode_image(data)
    if image is None:
        raise UploadError(400, f"{name}: the {FORMATS[kind]} data is truncated or corrupt; send the whole file")
    return image


def check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    """An :class:`UploadError` (413) when ``width`` x ``height`` is over ``max_pixels``."""
    if width * height > max_pixels:
        raise UploadError(413, f"{name}: {width}x{height} is {width * height:,} pixels, over this server's limit of "
                               f"{max_pixels:,} (--max-pixels); send a smaller image")
