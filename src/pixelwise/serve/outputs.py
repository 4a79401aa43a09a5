"""What ``POST /predict`` answers, one function per ``?output=``: the bytes and their media type.

The PNGs are those ``pixelwise predict`` writes for the same image (``labels``, ``color``, ``overlay``) and
those of ``--save-probs`` / ``--save-uncertainty`` (``probs``, ``uncertainty``), made by the same functions.
``json`` describes the labels: size, per-class pixel counts and shares, and per-class run-length encodings in
the Kaggle convention (1-based ``start length`` pairs over the pixels in column-major order, as
:func:`pixelwise.data.rle.rle_encode` writes them).

>>> import numpy as np
>>> labels = np.array([[0, 1], [1, 1]], np.uint8)
>>> summary = label_summary(labels, ["sky", "road"], [(0, 0, 255), (128, 64, 128)])
>>> [(c["name"], c["pixels"], c["share"], c["rle"]) for c in summary["classes"]]
[('sky', 1, 0.25, '1 1'), ('road', 3, 0.75, '2 3')]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

import numpy as np

from pixelwise.core.viz import colorize, overlay
from pixelwise.data.io import encode_png
from pixelwise.data.rle import rle_encode
from pixelwise.inference.soft_outputs import probs_npz, uncertainty_png
from pixelwise.serve.service import Prediction

Output = Literal["labels", "color", "overlay", "json", "probs", "uncertainty"]
MEDIA_TYPES = {"labels": "image/png", "color": "image/png", "overlay": "image/png", "json": "application/json",
               "probs": "application/x-npz", "uncertainty": "image/png"}
SUFFIXES = {"json": ".json", "probs": ".npz"}  # the rest are .png


def label_summary(labels: np.ndarray, names: Sequence[str], colors: Sequence[Sequence[int]]) -> dict:
    """Size, and per class: id, name, colour, pixel count, share of the image and Kaggle RLE."""
    height, width = labels.shape
    counts = np.bincount(labels.ravel(), minlength=len(names))
    classes = [{"id": i, "name": name, "color": [int(c) for c in color], "pixels": int(counts[i]),
                "share": float(counts[i]) / labels.size,
                "rle": rle_encode(labels == i) if counts[i] else ""}
               for i, (name, color) in enumerate(zip(names, colors, strict=True))]
    return {"width": width, "height": height, "rle_order": "column-major, 1-based start length pairs (Kaggle)",
            "classes": classes}


def render(output: Output, image: np.ndarray, prediction: Prediction, info: dict, uncertainty: str = "entropy",
           timing: dict | None = None) -> bytes:
    """The body of the answer: ``image`` is the decoded upload, ``info`` the service's :meth:`ModelService.info`."""
    names = [c["name"] for c in info["classes"]]
    palette = np.array([c["color"] for c in info["classes"]], dtype=np.uint8)
    labels = prediction.labels
    if output == "labels":
        return encode_png(labels)
    if output == "color":
        return encode_png(colorize(labels, palette))
    if output == "overlay":
        return encode_png(overlay(image, labels, palette))
    if output == "probs":
        return probs_npz(prediction.probs, names)
    if output == "uncertainty":
        return uncertainty_png(prediction.probs, uncertainty)
    summary = label_summary(labels, names, palette.tolist())
    summary.update(backend=info["backend"], precision=info["precision"], batch_size=prediction.batch_size,
                   timing_ms=timing or {})
    return json.dumps(summary).encode()
