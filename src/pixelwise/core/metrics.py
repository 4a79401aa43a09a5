"""Dataset-level segmentation metrics from one confusion matrix.

The matrix is accumulated over the whole evaluation set (and summed across processes), then every
metric is computed from it once: per-class IoU and Dice, mIoU, pixel accuracy and mean class
accuracy. This is the torchvision-references recipe; averaging per-image IoUs would weight small
images and empty classes wrongly.

>>> import torch
>>> cm = ConfusionMatrix(2)
>>> cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]))
>>> round(cm.compute()["miou"], 4)
0.5833
"""

from __future__ import annotations

import math

import torch

from pixelwise.core.device import sum_across_processes


class ConfusionMatrix:
    """``mat[t, p]`` counts pixels of true class ``t`` predicted as ``p``; negative targets are ignored."""

    def __init__(self, num_classes: int, names: list[str] | None = None) -> None:
        self.num_classes = num_classes
        self.names = names or [str(i) for i in range(num_classes)]
        self.mat = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        n = self.num_classes
        keep = (target >= 0) & (target < n)
        index = n * target[keep].to(torch.int64) + prediction[keep].to(torch.int64)
        self.mat += torch.bincount(index.cpu(), minlength=n * n).reshape(n, n)

    def all_reduce(self, device: torch.device | str | None = None) -> None:
        """Sum the matrices of all processes (DDP); a no-op in a single process.

        Call it once, after each process has counted its own, disjoint share of the images: a second
        call, or shares that overlap, would count pixels twice. ``device`` is where the collective
        runs (the accelerator's device; see :func:`pixelwise.core.device.sum_across_processes`).
        """
        self.mat = sum_across_processes(self.mat, device)

    def compute(self) -> dict:
        mat = self.mat.double()
        tp = mat.diag()
        truth, predicted = mat.sum(1), mat.sum(0)
        union = truth + predicted - tp
        iou = tp / union  # NaN where a class is in neither truth nor prediction
        dice = 2 * tp / (truth + predicted)
        recall = tp / truth
        present = union > 0
        total = mat.sum()

        def mean(values: torch.Tensor, where: torch.Tensor) -> float:
            return float(values[where].mean()) if where.any() else math.nan

        return {
            # mIoU: mean over classes that occur in truth or prediction (a class absent from both
            # has no defined IoU and is not counted as 0 or 1).
            "miou": mean(iou, present),
            "mean_dice": mean(dice, present),
            "pixel_accuracy": float(tp.sum() / total) if total > 0 else math.nan,
            "mean_accuracy": mean(recall, truth > 0),
            "per_class": {
                name: {"iou": _nan_to_none(iou[i]), "dice": _nan_to_none(dice[i]),
                       "accuracy": _nan_to_none(recall[i]), "pixels": int(truth[i])}
                for i, name in enumerate(self.names)
            },
        }


def _nan_to_none(x: torch.Tensor) -> float | None:
    value = float(x)
    return None if math.isnan(value) else value


def format_table(metrics: dict) -> str:
    """The per-class table users read after training or evaluation."""
    width = max(12, *(len(n) for n in metrics["per_class"]))
    lines = [f"{'class':<{width}}  {'IoU':>7}  {'Dice':>7}  {'Acc':>7}  {'pixels':>12}"]

    def pct(v: float | None) -> str:
        return "    -  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:6.2f}%"

    for name, m in metrics["per_class"].items():
        lines.append(f"{name:<{width}}  {pct(m['iou'])}  {pct(m['dice'])}  {pct(m['accuracy'])}  {m['pixels']:>12}")
    lines.append(f"{'mIoU':<{width}}  {pct(metrics['miou'])}  {pct(metrics['mean_dice'])}")
    lines.append(f"pixel accuracy {pct(metrics['pixel_accuracy'])}   "
                 f"mean class accuracy {pct(metrics['mean_accuracy'])}")
    return "\n".join(lines)


def selection_score(metrics: dict, score_class: str | None = None) -> float:
    """The number a run maximises to pick its best checkpoint: the mIoU, or one class's IoU.

    Binary foreground problems (cracks, nuclei, people) are scored on the foreground class: the
    background's IoU is high whatever the model does, so in the mean it would hide half the change.
    A class that neither truth nor prediction shows has no IoU; it scores 0 (nothing better was found).

    >>> m = {"miou": 0.7, "per_class": {"background": {"iou": 0.95}, "crack": {"iou": 0.45}}}
    >>> selection_score(m), selection_score(m, "crack")
    (0.7, 0.45)
    """
    if score_class is None:
        return metrics["miou"]
    iou = metrics["per_class"][score_class]["iou"]
    return 0.0 if iou is None else iou
