"""Segmentation losses, built by name: ``ce``, ``dice``, or a sum such as ``ce+dice``.

One module per loss; importing this package imports every module in it, so a new loss is one new
file with a ``@register_loss("name")`` class (see :mod:`pixelwise.training.losses.base`), and a loss
outside pixelwise is a plugin module (``PIXELWISE_PLUGINS``, see :mod:`pixelwise.core.plugins`).

>>> import torch
>>> loss = build_loss("ce+dice", num_classes=3)
>>> logits, target = torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
>>> round(float(loss(logits, target)), 3) > 0
True
>>> list_losses()[:2]
['ce', 'dice']
"""

from __future__ import annotations

import importlib
import pkgutil

from pixelwise.training.losses.base import LOSSES, SumLoss, build_loss, list_losses, loss_arguments, register_loss

# Every module of this package registers its loss on import; no list to keep up to date.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LOSSES", "SumLoss", "build_loss", "list_losses", "loss_arguments", "register_loss"]
