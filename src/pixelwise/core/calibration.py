"""Calibration: does a model's confidence match how often it is right? Expected calibration error (ECE).

Pixels are put in bins by the probability of their predicted class (the model's confidence); a calibrated
model is right in 80% of the pixels it is 80% sure of. ECE is the pixel-weighted mean gap between each bin's
accuracy and its mean confidence (Guo et al. 2017, "On Calibration of Modern Neural Networks", 15 equal-width
bins), 0 for a perfectly calibrated model. Like the confusion matrix, the bins are summed over the whole
evaluation set and the score computed once.

>>> import torch
>>> calibration = Calibration(bins=10)
>>> logits = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])     # (C=2, H=1, W=2): confidences 0.88 and 0.5
>>> calibration.update(logits, torch.tensor([[0, 1]]))      # right on the first pixel, wrong on the second
>>> round(calibration.compute()["ece"], 3)                  # (|1 - 0.881| + |0 - 0.5|) / 2
0.31
"""

from __future__ import annotations

import math

import torch

DEFAULT_BINS = 15


class Calibration:
    """Per confidence bin: pixels, summed confidence and correct pixels; negative targets are ignored."""

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        self.bins = bins
        self.pixels = torch.zeros(bins, dtype=torch.int64)
        self.confidence = torch.zeros(bins, dtype=torch.float64)
        self.correct = torch.zeros(bins, dtype=torch.int64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Count one image: ``(C, H, W)`` logits and its ``(H, W)`` class ids (negative or >= C: ignored)."""
        num_classes = logits.shape[0]
        keep = (target >= 0) & (target < num_classes)
        top = torch.softmax(logits.float(), 0).max(0)
        confidence = top.values[keep].double().cpu()
        right = (top.indices[keep] == target[keep].to(top.indices.device)).cpu()
        # A confidence of exactly 1 belongs in the last bin, not one past it.
        index = (confidence * self.bins).long().clamp_(0, self.bins - 1)
        self.pixels += torch.bincount(index, minlength=self.bins)
        self.confidence += torch.zeros(self.bins, dtype=torch.float64).index_add_(0, index, confidence)
        self.correct += torch.bincount(index[right], minlength=self.bins)

    def compute(self) -> dict:
        """``{"ece": ..., "bins": [{"low", "high", "pixels", "confidence", "accuracy"}, ...]}``; ECE is NaN
        when no pixel was counted."""
        total = int(self.pixels.sum())
        rows, ece = [], 0.0
        for b in range(self.bins):
            n = int(self.pixels[b])
            confidence = float(self.confidence[b]) / n if n else None
            accuracy = int(self.correct[b]) / n if n else None
            if n:
                ece += n / total * abs(accuracy - confidence)
            rows.append({"low": b / self.bins, "high": (b + 1) / self.bins, "pixels": n, "confidence": confidence,
                         "accuracy": accuracy})
        return {"ece": ece if total else math.nan, "bins": rows}
