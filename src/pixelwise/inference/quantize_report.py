"""What an int8 model costs and gains, measured: mIoU and per-class IoU of fp32 vs int8 on a val split,
the share of pixels whose labels they agree on, and the speed-up.

Every model runs on the same batches in turn, in the same process, so the timings share the machine's
state (a shared CPU slows them all alike) and the speed-up is a ratio of one run, not of two runs apart.

>>> import torch
>>> from pixelwise.data.presets import get_preset
>>> batch = {"image": torch.zeros(1, 3, 2, 2, dtype=torch.uint8), "mask": torch.tensor([[[0, 1], [1, 1]]]),
...          "image_size": torch.tensor([[2, 2]]), "mask_size": torch.tensor([[2, 2]])}
>>> right = lambda images: torch.tensor([[[[9.0, 0], [0, 0]], [[0, 9], [9, 9]]]])
>>> wrong = lambda images: torch.tensor([[[[9.0, 9], [0, 0]], [[0, 0], [9, 9]]]])
>>> report = compare_models({"fp32": right, "int8": wrong}, [batch], get_preset("binary"), (0.5,) * 3, (0.5,) * 3)
>>> report["agreement"]["int8"], report["miou"]["fp32"]
(0.75, 1.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

import torch

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.core.machine import cpu_flags, cpu_model
from pixelwise.core.metrics import ConfusionMatrix
from pixelwise.data.classes import ClassSpec
from pixelwise.inference.score import LogitsFn, batch_predictions

# The CPU instructions that make int8 (and bf16) fast, as /proc/cpuinfo names them.
SPEED_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16")


def compare_models(models: dict[str, LogitsFn], batches: Iterable[dict], classes: ClassSpec,
                   mean: Sequence[float], std: Sequence[float], reference: str = "fp32") -> dict:
    """Score every model of ``models`` on ``batches``: mIoU, per-class IoU, label agreement with ``reference``
    over the pixels of every image (ignored ones too: agreement needs no truth) and the model's seconds per image
    (its call alone: resizing the logits and the argmax cost every model the same)."""
    cms = {name: ConfusionMatrix(classes.num_classes, classes.names) for name in models}
    seconds = dict.fromkeys(models, 0.0)

    def timed(name: str) -> LogitsFn:  # the model's own time: resizing logits and argmax are the same for all
        def run(images: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            logits = models[name](images)
            seconds[name] += time.perf_counter() - start
            return logits

        return run

    same, pixels, images = dict.fromkeys(models, 0), 0, 0
    for number, batch in enumerate(batches):
        if number == 0:  # compile each model's kernels for this shape before anything is timed
            for fn in models.values():
                batch_predictions(fn, batch, mean, std)
        predictions = {name: batch_predictions(timed(name), batch, mean, std) for name in models}
        valid = predictions[reference] != TARGET_IGNORE  # the padding of smaller masks is no pixel
        pixels += int(valid.sum())
        images += len(batch["mask"])
        for name, labels in predictions.items():
            cms[name].update(labels, batch["mask"])
            same[name] += int(((labels == predictions[reference]) & valid).sum())
    scores = {name: cm.compute() for name, cm in cms.items()}
    return {
        "images": images,
        "miou": {name: s["miou"] for name, s in scores.items()},
        "per_class_iou": {name: {c: v["iou"] for c, v in s["per_class"].items()} for name, s in scores.items()},
        "agreement": {name: same[name] / max(pixels, 1) for name in models},
        "seconds_per_image": {name: t / max(images, 1) for name, t in seconds.items()},
        "speedup": {name: seconds[reference] / t if t > 0 else math.nan for name, t in seconds.items()},
    }


def cpu_speed_facts() -> dict:
    """The CPU and which of its instructions speed up int8 and bf16 (a speed-up means little without them)."""
    flags = cpu_flags()
    return {"cpu": cpu_model(), "instructions": [f for f in SPEED_FLAGS if f in flags]}


def worst_class_drop(report: dict, candidate: str = "int8", reference: str = "fp32") -> tuple[str, float]:
    """The class whose IoU falls most from ``reference`` to ``candidate``, and by how much (a fraction).

    >>> worst_class_drop({"per_class_iou": {"fp32": {"a": 0.5, "b": 0.9, "c": None}, "int8": {"a": 0.49, "b": 0.8,
    ...                                                                                       "c": 0.1}}})
    ('b', 0.1)
    """
    ref, cand = report["per_class_iou"][reference], report["per_class_iou"][candidate]
    # A class absent from the split (IoU None in both) has nothing to lose; None against a value counts as 0.
    drops = {c: (ref[c] or 0.0) - (cand[c] or 0.0) for c in ref if ref[c] is not None or cand[c] is not None}
    name = max(drops, key=lambda c: drops[c])
    return name, round(drops[name], 6)


def format_report(report: dict) -> str:
    """The per-class IoU table of every model, then mIoU, agreement with fp32 and the speed-up."""
    names = list(report["miou"])
    classes = list(report["per_class_iou"][names[0]])
    width = max(12, *(len(c) for c in classes))

    def pct(value: float | None) -> str:
        return f"{'-':>8}" if value is None or math.isnan(value) else f"{100 * value:7.2f}%"

    lines = [f"{'class IoU':<{width}}" + "".join(f"{n:>9}" for n in names)]
    for c in classes:
        lines.append(f"{c:<{width}}" + "".join(f" {pct(report['per_class_iou'][n][c])}" for n in names))
    lines.append(f"{'mIoU':<{width}}" + "".join(f" {pct(report['miou'][n])}" for n in names))
    lines.append(f"{'agreement':<{width}}" + "".join(f" {pct(report['agreement'][n])}" for n in names))
    lines.append(f"{'ms / image':<{width}}" + "".join(f" {1000 * report['seconds_per_image'][n]:8.1f}" for n in names))
    lines.append(f"{'speed-up':<{width}}" + "".join(f" {report['speedup'][n]:7.2f}x" for n in names))
    return "\n".join(lines)
