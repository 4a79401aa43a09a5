"""The model registry: ``@register_model("name")`` on a :class:`SegmentationModel` subclass; ``create_model(name)``.

>>> import torch.nn as nn
>>> @register_model("tiny_example")
... class TinyExample(SegmentationModel):
...     '''A 1x1 conv: the smallest model there is.'''
...     def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
...         super().__init__()
...         self.head = nn.Conv2d(in_channels, num_classes, 1)
...     def forward_padded(self, x):
...         return self.head(x)
>>> "tiny_example" in list_models(), describe_model("tiny_example")
(True, 'A 1x1 conv: the smallest model there is.')
>>> model = create_model("tiny_example", num_classes=4, in_channels=None)
>>> model.head.out_channels, model.model_name, model.init_kwargs
(4, 'tiny_example', {'num_classes': 4})
>>> unregister_model("tiny_example")  # a doctest must not leave a model behind for the other tests
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pixelwise.core.errors import ConfigError
from pixelwise.core.registry import Registry
from pixelwise.models.base import SegmentationModel, init_parameters

MODELS: Registry[type[SegmentationModel]] = Registry("model", hint="see `pixelwise models`")
M = TypeVar("M", bound=type[SegmentationModel])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`SegmentationModel` subclass as model ``name``.

    The first line of the class's docstring is what ``pixelwise models`` prints for it.
    """

    def add(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, SegmentationModel)):
            raise TypeError(f"register_model('{name}') decorates a SegmentationModel subclass, not {cls!r}")
        cls.model_name = name
        return MODELS.add(name, cls)

    return add


def unregister_model(name: str) -> None:
    """Remove a registered model (for tests that register a toy one)."""
    MODELS.remove(name)


def list_models() -> list[str]:
    return sorted(MODELS.names())


def describe_model(name: str) -> str:
    """The first line of the model class's docstring."""
    return MODELS.describe(name)


def create_model(name: str, **kwargs: Any) -> SegmentationModel:
    """Build a registered model. Keyword arguments that are ``None`` are dropped so the
    model's own defaults hold (timm's "pruned kwargs"); unknown ones are an error.

    The model records the arguments that built it as ``model.init_kwargs`` (see :class:`SegmentationModel`).
    """
    cls = MODELS.get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    options = init_parameters(cls)
    if not any(p.kind is p.VAR_KEYWORD for p in options.values()):
        unknown = sorted(set(kwargs) - set(options))
        if unknown:
            raise ConfigError(f"model '{name}' has no option '{unknown[0]}'; its options are {', '.join(options)}")
    return cls(**kwargs)
