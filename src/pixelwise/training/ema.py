"""An exponential moving average (EMA) of the weights, validated and saved in place of the raw weights.

Late in training the weights jitter around a good point with every step; their running average sits closer
to it (Polyak averaging), which typically adds a little IoU for nothing but memory. ``ema: 0.999`` in a recipe
averages with that decay per optimizer step, i.e. over roughly the last 1/(1 - decay) = 1000 steps. Batch-norm
statistics are averaged too (``use_buffers``), so the averaged model is complete on its own.

>>> import torch
>>> model = torch.nn.Linear(2, 1)
>>> ema = WeightAverage(model, decay=0.5)
>>> ema.update(model)  # the first update takes the weights as they are
>>> with torch.no_grad():
...     _ = model.weight.add_(2.0)
>>> ema.update(model)
>>> torch.allclose(ema.module.weight, model.weight - 1.0)  # halfway between the old and the new weights
True
"""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn
from safetensors.torch import load_file
from safetensors.torch import save as tensors_to_bytes
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pixelwise.core.files import write_bytes


class WeightAverage:
    """The EMA of ``model``'s parameters and buffers; ``module`` is a model of the same class to evaluate."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after each optimizer step)."""
        self.averaged.update_parameters(model)

    def save(self, path: Path) -> None:
        weights = {k: v.detach().cpu().contiguous() for k, v in self.averaged.state_dict().items()}
        write_bytes(path, tensors_to_bytes(weights))  # in memory first: a full disk is an OSError naming the file

    def load(self, path: Path) -> None:
        self.averaged.load_state_dict(load_file(str(path)))
