"""Test-time augmentation: logits averaged over horizontally flipped and rescaled inputs.

Used by the predictor (``predict --tta-flip --tta-scales``) and by evaluation (``evaluate --tta-flip``),
so the score of a TTA prediction is measured exactly as it is made.

>>> import torch
>>> model = torch.nn.Conv2d(3, 2, 3, padding=1)
>>> x = torch.randn(1, 3, 8, 8)
>>> both = TTAModel(model, flip=True)(x)
>>> torch.allclose(both, (model(x) + model(x.flip(-1)).flip(-1)) / 2, atol=1e-6)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.errors import ConfigError

ModelFn = Callable[[torch.Tensor], torch.Tensor]  # (N, C_in, h, w) images -> (N, classes, h, w) float logits


def with_tta(model_fn: ModelFn, flip: bool = False, scales: Sequence[float] = (1.0,)) -> ModelFn:
    """``model_fn`` averaged over horizontal flips and input scales (logits resized back to the input size).

    Works on float (normalised) inputs: resizing needs floats. With no option it returns ``model_fn`` itself.
    """
    scales = [float(s) for s in scales] or [1.0]
    if not all(s > 0 for s in scales):
        raise ConfigError(f"TTA scales {scales}: every scale must be positive, e.g. 0.75,1,1.25")
    if not flip and scales == [1.0]:
        return model_fn

    def averaged(x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        total, runs = None, 0
        for scale in scales:
            scaled = enlarged(x, scale)
            variants = [(scaled, False), (scaled.flip(-1), True)] if flip else [(scaled, False)]
            for inputs, flipped in variants:
                logits = model_fn(inputs).float()
                if flipped:
                    logits = logits.flip(-1)
                if tuple(logits.shape[-2:]) != size:
                    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
                total = logits if total is None else total + logits
                runs += 1
        return total / runs

    return averaged


def enlarged(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Normalised ``(N, C, H, W)`` inputs resized by ``scale`` (bilinear), as TTA and ``predict_scale`` feed a model.

    >>> enlarged(torch.zeros(1, 3, 4, 6), 1.5).shape
    torch.Size([1, 3, 6, 9])
    """
    if scale == 1.0:
        return x
    target = [max(1, round(s * scale)) for s in x.shape[-2:]]
    return F.interpolate(x, size=target, mode="bilinear", align_corners=False)


def prediction_scales(predict_scale: float, tta_scales: Sequence[float] = (1.0,)) -> list[float]:
    """The scales a checkpoint runs at: each TTA scale times its ``predict_scale`` (its inputs' enlargement).

    >>> prediction_scales(1.5, (1.0, 0.5))
    [1.5, 0.75]
    """
    return [float(predict_scale) * float(s) for s in tta_scales]


class TTAModel(nn.Module):
    """A model whose forward is :func:`with_tta` of ``model``: where a model goes (evaluation), TTA goes too."""

    def __init__(self, model: nn.Module, flip: bool = False, scales: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        self.model = model
        self._forward = with_tta(model, flip, scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)
