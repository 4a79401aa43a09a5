"""Evaluation: predictions scored at each mask's own resolution, into one confusion matrix.

Images may have been resized for the network; logits are cropped to the image's true size and
resized to the mask's size before the argmax, so the metrics are those of the original labels.

>>> import torch, pixelwise
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2).eval()
>>> batch = {"image": torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "mask": torch.zeros(1, 8, 8, dtype=torch.long),
...          "image_size": torch.tensor([[8, 8]]), "mask_size": torch.tensor([[8, 8]])}
>>> cm, loss = evaluate_model(model, [batch], 2, (0.5,) * 3, (0.5,) * 3)
>>> int(cm.mat.sum())
64
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from pixelwise.core.calibration import Calibration
from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.core.device import autocast, resolve_device, resolve_precision, resolve_workers, sum_across_processes
from pixelwise.core.errors import DataError
from pixelwise.core.files import write_json
from pixelwise.core.metrics import ConfusionMatrix
from pixelwise.data.checks import scan_samples
from pixelwise.data.dataset import SegmentationDataset, collate_padded
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.data.sample import Sample
from pixelwise.data.transforms import eval_transform, normalize
from pixelwise.models.base import logits_at_size
from pixelwise.models.checkpoint import CheckpointMeta, other_prediction_size
from pixelwise.models.ensemble import Checkpoints, checkpoint_paths, load_checkpoints
from pixelwise.models.tta import TTAModel, prediction_scales


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[dict],
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    loss_fn: nn.Module | None = None,
    names: list[str] | None = None,
    channels_last: bool = False,
    on_batch: Callable[[dict, torch.Tensor], None] | None = None,
    across_processes: bool = False,
    calibration: Calibration | None = None,
) -> tuple[ConfusionMatrix, float | None]:
    """Confusion matrix over ``batches`` and the mean loss per valid pixel if ``loss_fn``.

    ``across_processes``: each DDP process was given its own, disjoint share of the images (the
    trainer's validation); the matrix and the loss are then summed over all processes, so every
    process returns the scores of the whole set. Off by default: a process that scores every image
    itself (``pixelwise evaluate``, even when called inside a DDP job) must not add the others' counts.
    ``on_batch(batch, predictions)`` sees each batch's full-resolution predictions (for previews).
    ``calibration`` (not summed across processes) counts each pixel's confidence and whether it was right.
    """
    # long function: one pass over the batches that also scores loss and calibration; split, it would pass ten values
    device = torch.device(device)
    model.eval()
    cm = ConfusionMatrix(num_classes, names)
    loss_sum, loss_pixels = torch.zeros((), dtype=torch.float64), 0
    for batch in batches:
        images = normalize(batch["image"].to(device), mean, std)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            logits = model(images)
        predictions = torch.full(batch["mask"].shape, TARGET_IGNORE, dtype=torch.int64)
        for k in range(logits.shape[0]):
            mh, mw = (int(s) for s in batch["mask_size"][k])
            item = logits_at_size(logits[k].float(), batch["image_size"][k], (mh, mw))
            target = batch["mask"][k, :mh, :mw].to(device)
            if calibration is not None:
                calibration.update(item, target)
            if loss_fn is not None:
                valid = int((target >= 0).sum())
                if valid:
                    loss_sum += float(loss_fn(item[None], target[None])) * valid
                    loss_pixels += valid
            # max(0).indices, not argmax(0): on a CPU, argmax across channels (stride H*W) takes ~9x longer
            # (40 ms for 11 x 360x480), as long as a small model's forward. Same ids (first maximum wins).
            predictions[k, :mh, :mw] = item.max(0).indices.cpu()
        cm.update(predictions, batch["mask"])
        if on_batch is not None:
            on_batch(batch, predictions)
    totals = torch.tensor([float(loss_sum), float(loss_pixels)], dtype=torch.float64)
    if across_processes:
        # Exactly once per evaluation, and by every process (a collective that one process skipped
        # would hang the others), also by a process whose share was empty.
        cm.all_reduce(device)
        totals = sum_across_processes(totals, device)
    mean_loss = None
    if loss_fn is not None:
        mean_loss = float(totals[0] / totals[1]) if totals[1] > 0 else None
    return cm, mean_loss


def score_samples(model: nn.Module, meta: CheckpointMeta, index: DatasetIndex, samples: list[Sample],
                  batch_size: int = 4, workers: int | None = None, device: str = "auto", precision: str = "auto",
                  tta_flip: bool = False, tta_scales: Sequence[float] = (1.0,),
                  calibration: Calibration | None = None) -> ConfusionMatrix:
    """The confusion matrix of a loaded model (``meta``: its metadata) over ``samples`` of ``index``,
    checked first; each image is fed at the model's input size and scored at its mask's size.
    ``tta_flip`` / ``tta_scales``: logits averaged over mirrored / resized inputs, as ``predict`` makes them.
    ``calibration``: also count its pixels' confidences (see :func:`evaluate_model`)."""
    spec = index.classes
    scan_samples(samples, spec, reader=index.reader)
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    channels_last = prec != "fp32"
    model = model.to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dataset = SegmentationDataset(samples, spec, eval_transform(meta.input_size), augment=False, reader=index.reader)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=resolve_workers(workers, dev),
                        collate_fn=collate_padded)
    scales = prediction_scales(meta.predict_scale, tta_scales)
    if tta_flip or scales != [1.0]:
        model = TTAModel(model, tta_flip, scales)
    cm, _ = evaluate_model(model, loader, spec.num_classes, meta.mean, meta.std, dev, prec, names=spec.names,
                           channels_last=channels_last, calibration=calibration)
    return cm


def evaluate_checkpoint(checkpoint: Checkpoints, data: str | Path, split: str = "val", format: str = "auto",
                        classes: str | None = None, batch_size: int = 4, workers: int | None = None,
                        device: str = "auto", precision: str = "auto", json_path: str | Path | None = None,
                        confusion_png: str | Path | None = None, tta_flip: bool = False,
                        tta_scales: Sequence[float] = (1.0,),
                        input_size: tuple[int, int] | None | str = "model",
                        predict_scale: float | None = None) -> dict:
    """Score a checkpoint, or the ensemble of a list of them, on a split: metrics dict (see
    :meth:`ConfusionMatrix.compute`) with the expected calibration error ``ece`` and its ``calibration`` bins
    (:mod:`pixelwise.core.calibration`).

    The dataset's classes default to the checkpoint's own, so a model is scored on the labels it predicts.
    """
    model, meta = load_checkpoints(checkpoint)
    meta = other_prediction_size(meta, input_size, predict_scale)
    index = open_dataset(data, format, classes if classes is not None else meta.classes)
    spec = index.classes
    if spec.num_classes != meta.classes.num_classes:
        names = " + ".join(str(p) for p in checkpoint_paths(checkpoint))
        raise DataError(f"{data}: dataset has {spec.num_classes} classes but {names} predicts "
                        f"{meta.classes.num_classes}; pass --classes matching the model")
    samples = index.split(split)
    calibration = Calibration()
    cm = score_samples(model, meta, index, samples, batch_size, workers, device, precision, tta_flip, tta_scales,
                       calibration)
    metrics = cm.compute()
    calibrated = calibration.compute()
    metrics["ece"], metrics["calibration"] = calibrated["ece"], calibrated["bins"]
    metrics["split"], metrics["images"] = split, len(samples)
    metrics["tta"] = {"flip": tta_flip, "scales": [float(s) for s in tta_scales]}
    metrics["input_size"] = list(meta.input_size) if meta.input_size else None
    metrics["predict_scale"] = meta.predict_scale
    if json_path is not None:
        write_json(json_path, metrics)
    if confusion_png is not None:
        # Imported here, not with the module: core.viz imports matplotlib (about half a second), and
        # `import pixelwise` (which imports this module) should not pay for a plot it may never draw.
        from pixelwise.core.viz import plot_confusion

        plot_confusion(cm.mat.numpy(), spec.names, confusion_png)
    return metrics
