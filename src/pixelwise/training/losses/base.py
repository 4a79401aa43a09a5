"""The loss registry and ``build_loss``: one loss by name, or several joined by ``+`` (their sum).

A loss is an ``nn.Module`` class registered with ``@register_loss("name")``; it is called as
``loss(logits, target)`` with float logits ``(N, C, H, W)`` and int64 targets ``(N, H, W)`` in which
``TARGET_IGNORE`` (-1) marks pixels that count nowhere. What a loss needs from the run it says by the
parameters of its constructor: ``build_loss`` passes ``num_classes`` and ``class_weights`` to a loss
that has a parameter of that name, and nothing else (its other parameters keep their defaults).

>>> import torch
>>> class MeanLogit(torch.nn.Module):  # a toy; a real one is decorated with @register_loss("name")
...     def __init__(self, num_classes: int, scale: float = 1.0) -> None:
...         super().__init__()
...         self.num_classes, self.scale = num_classes, scale
>>> loss_arguments(MeanLogit, num_classes=3, class_weights=[1.0, 2.0, 3.0])
{'num_classes': 3}
>>> try:
...     build_loss("ce+focal", num_classes=3)
... except ConfigError as e:
...     print(str(e).split(";")[0])
unknown loss 'focal'
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError
from pixelwise.core.registry import Registry

LOSSES: Registry[type[nn.Module]] = Registry("loss", hint="or a sum of them such as ce+dice")


def register_loss(name: str):
    """Decorator: register a loss class under ``name`` (what ``--loss`` and ``loss:`` in a recipe take)."""
    return LOSSES.register(name)


def list_losses() -> list[str]:
    """The registered loss names, built-ins first."""
    return LOSSES.names()


class SumLoss(nn.Module):
    """The sum of several losses (``ce+dice``)."""

    def __init__(self, losses: list[nn.Module]) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(loss(logits, target) for loss in self.losses)


def loss_arguments(loss_class: type[nn.Module], **available: Any) -> dict[str, Any]:
    """The entries of ``available`` that ``loss_class``'s constructor has a parameter for."""
    params = inspect.signature(loss_class).parameters
    return {name: value for name, value in available.items() if name in params}


def build_loss(name: str, num_classes: int, class_weights: Sequence[float] | None = None) -> nn.Module:
    """``name`` is one loss or several joined by ``+`` (their sum); each gets what its constructor takes."""
    classes = [LOSSES.get(part.strip()) for part in name.split("+")]
    if class_weights is not None and len(class_weights) != num_classes:
        raise ConfigError(f"class_weights has {len(class_weights)} values for {num_classes} classes")
    losses = [cls(**loss_arguments(cls, num_classes=num_classes, class_weights=class_weights)) for cls in classes]
    return losses[0] if len(losses) == 1 else SumLoss(losses)
