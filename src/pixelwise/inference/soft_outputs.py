"""Soft outputs of a prediction, as files: class probabilities (NPZ) and an uncertainty map (PNG).

``pixelwise predict --save-probs / --save-uncertainty`` and the server's ``?output=probs|uncertainty``
both encode with these functions, so a file and an API answer for one image hold the same maps.

* probabilities: an ``.npz`` holding ``probs``, the ``(classes, H, W)`` float16 softmax, and ``classes``,
  the class names (``np.load(path)["probs"]``; no pickle needed);
* uncertainty: an 8-bit grey PNG at the image's size, 0 = certain, 255 = most uncertain
  (:mod:`pixelwise.core.uncertainty`: ``entropy`` over log(C), or ``margin`` = 1 - top probability).

>>> import io
>>> from pixelwise.data.io import decode_image
>>> probs = np.full((2, 3, 4), 0.5, np.float32)
>>> saved = np.load(io.BytesIO(probs_npz(probs, ["sky", "road"])))
>>> saved["probs"].dtype, saved["probs"].shape, saved["classes"].tolist()
(dtype('float16'), (2, 3, 4), ['sky', 'road'])
>>> decode_image(uncertainty_png(probs, "entropy"))[0, 0].tolist()   # a 50/50 guess: the most uncertain
[255, 255, 255]
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from pixelwise.core.uncertainty import uncertainty_map, uncertainty_png_values
from pixelwise.data.io import encode_png


def probs_npz(probs: np.ndarray, names: Sequence[str]) -> bytes:
    """``(classes, H, W)`` probabilities as compressed NPZ bytes: float16 ``probs`` and the ``classes`` names."""
    buffer = io.BytesIO()
    # float16 halves the size and keeps 3 significant digits, more than any probability here is worth.
    np.savez_compressed(buffer, probs=probs.astype(np.float16), classes=np.array(list(names), dtype=str))
    return buffer.getvalue()


def uncertainty_image(probs: np.ndarray, kind: str = "entropy") -> np.ndarray:
    """``(H, W)`` uint8 grey levels of the uncertainty of ``(classes, H, W)`` probabilities."""
    return uncertainty_png_values(uncertainty_map(torch.from_numpy(probs), kind))


def uncertainty_png(probs: np.ndarray, kind: str = "entropy") -> bytes:
    """The uncertainty PNG of ``(classes, H, W)`` probabilities; ``kind``: entropy or margin."""
    return encode_png(uncertainty_image(probs, kind))
