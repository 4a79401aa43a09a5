"""Segmentation models: a registry of architectures, each a :class:`SegmentationModel` returning logits.

Every module of this package is imported here, so a model family registers itself by being a file in
the package: adding a model is one new module with a ``@register_model("name")`` class, nothing else.

>>> from pixelwise.models import create_model, list_models
>>> {"unet", "segnet", "deeplabv3plus"} <= set(list_models())
True
"""

import importlib
import pkgutil

from pixelwise.models.base import SegmentationModel
from pixelwise.models.registry import create_model, describe_model, list_models, register_model

# Imported for their @register_model classes; sorted by name, so the order never depends on the file system.
for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["SegmentationModel", "create_model", "describe_model", "list_models", "register_model"]
