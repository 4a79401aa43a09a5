"""Scoring an exported model (``.onnx``, OpenVINO ``.xml``, an int8 model) on a dataset split.

The inference-layer twin of :mod:`pixelwise.training.evaluate` (which scores PyTorch checkpoints; the two
layers never import each other): the same preprocessing as the predictor (the model's input size, its
mean/std), the same scoring at each mask's own resolution into one :class:`ConfusionMatrix`. Any
:class:`Backend` runs the model, so ``pixelwise evaluate model_int8.xml`` scores what ``predict`` makes.

>>> import torch
>>> from pixelwise.data.presets import get_preset
>>> batch = {"image": torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "mask": torch.ones(1, 4, 4, dtype=torch.long),
...          "image_size": torch.tensor([[4, 4]]), "mask_size": torch.tensor([[4, 4]])}
>>> always_one = lambda images: torch.stack([torch.zeros(4, 4), torch.ones(4, 4)])[None].repeat(len(images), 1, 1, 1)
>>> cm = score_batches(always_one, [batch], get_preset("binary"), (0.5,) * 3, (0.5,) * 3)
>>> cm.compute()["miou"]
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pixelwise.core.calibration import Calibration
from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.core.device import resolve_workers
from pixelwise.core.errors import DataError
from pixelwise.core.files import write_json
from pixelwise.core.metrics import ConfusionMatrix
from pixelwise.data.checks import scan_samples
from pixelwise.data.classes import ClassSpec
from pixelwise.data.dataset import SegmentationDataset, collate_padded
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.data.sample import Sample
from pixelwise.data.transforms import eval_transform, normalize
from pixelwise.inference.backends import open_backend
from pixelwise.models.base import logits_at_size
from pixelwise.models.checkpoint import other_prediction_size
from pixelwise.models.tta import prediction_scales, with_tta

LogitsFn = Callable[[torch.Tensor], torch.Tensor]  # normalised (N, 3, h, w) images -> float (N, classes, h, w)


def split_loader(index: DatasetIndex, samples: list[Sample], input_size: tuple[int, int] | None,
                 batch_size: int = 4, workers: int | None = 0) -> DataLoader:
    """Batches of ``samples`` (checked first) as evaluation sees them: images resized to ``input_size``,
    masks at their own resolution (see :func:`pixelwise.data.dataset.collate_padded`)."""
    scan_samples(samples, index.classes, reader=index.reader)
    dataset = SegmentationDataset(samples, index.classes, eval_transform(input_size), augment=False,
                                  reader=index.reader)
    return DataLoader(dataset, batch_size=batch_size, num_workers=resolve_workers(workers, torch.device("cpu")),
                      collate_fn=collate_padded)


@torch.no_grad()
def batch_predictions(logits_fn: LogitsFn, batch: dict, mean: Sequence[float], std: Sequence[float],
                      calibration: Calibration | None = None) -> torch.Tensor:
    """int64 ``(N, H, W)`` class ids of a collated batch at its masks' sizes (``TARGET_IGNORE`` in the padding)."""
    logits = logits_fn(normalize(batch["image"], mean, std))
    predictions = torch.full(batch["mask"].shape, TARGET_IGNORE, dtype=torch.int64)
    for k in range(logits.shape[0]):
        mh, mw = (int(s) for s in batch["mask_size"][k])
        item = logits_at_size(logits[k].float(), batch["image_size"][k], (mh, mw))
        if calibration is not None:
            calibration.update(item, batch["mask"][k, :mh, :mw])
        # max(0).indices, not argmax(0): ~9x faster across channels on a CPU (see training/evaluate.py)
        predictions[k, :mh, :mw] = item.max(0).indices
    return predictions


def score_batches(logits_fn: LogitsFn, batches: Iterable[dict], classes: ClassSpec, mean: Sequence[float],
                  std: Sequence[float], calibration: Calibration | None = None) -> ConfusionMatrix:
    """The confusion matrix of ``logits_fn`` (a backend, a compiled model) over ``batches``."""
    cm = ConfusionMatrix(classes.num_classes, classes.names)
    for batch in batches:
        cm.update(batch_predictions(logits_fn, batch, mean, std, calibration), batch["mask"])
    return cm


def evaluate_exported(model: str | Path, data: str | Path, split: str = "val", format: str = "auto",
                      classes: str | None = None, batch_size: int = 4, workers: int | None = None,
                      precision: str = "auto", backend: str = "auto", json_path: str | Path | None = None,
                      confusion_png: str | Path | None = None, tta_flip: bool = False,
                      tta_scales: Sequence[float] = (1.0,),
                      input_size: tuple[int, int] | None | str = "model",
                      predict_scale: float | None = None) -> dict:
    """Score an exported model on a split: the metrics of :func:`pixelwise.training.evaluate.evaluate_checkpoint`
    (per-class IoU/Dice, mIoU, ECE and its bins), run on ``backend`` as ``predict`` runs the file."""
    runner = open_backend(Path(model), backend, "cpu", precision)
    meta = other_prediction_size(runner.meta, input_size, predict_scale)
    index = open_dataset(data, format, classes if classes is not None else meta.classes)
    if index.classes.num_classes != meta.classes.num_classes:
        raise DataError(f"{data}: dataset has {index.classes.num_classes} classes but {model} predicts "
                        f"{meta.classes.num_classes}; pass --classes matching the model")
    samples = index.split(split)
    calibration = Calibration()
    loader = split_loader(index, samples, meta.input_size, batch_size, workers)
    scales = prediction_scales(meta.predict_scale, tta_scales)
    cm = score_batches(with_tta(runner, tta_flip, scales), loader, index.classes, meta.mean, meta.std, calibration)
    metrics = cm.compute()
    calibrated = calibration.compute()
    metrics["ece"], metrics["calibration"] = calibrated["ece"], calibrated["bins"]
    metrics["split"], metrics["images"] = split, len(samples)
    metrics["tta"] = {"flip": tta_flip, "scales": [float(s) for s in tta_scales]}
    metrics["input_size"] = list(meta.input_size) if meta.input_size else None
    metrics["predict_scale"] = meta.predict_scale
    metrics["backend"] = f"{runner.name} ({runner.precision})"
    if json_path is not None:
        write_json(json_path, metrics)
    if confusion_png is not None:
        from pixelwise.core.viz import plot_confusion  # matplotlib only when a plot is asked for

        plot_confusion(cm.mat.numpy(), index.classes.names, confusion_png)
    return metrics
