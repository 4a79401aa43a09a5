"""A small model registry in timm's style.

>>> @register_model
... def tiny_example(num_classes: int = 2, **kwargs):
...     import torch.nn as nn
...     return nn.Conv2d(3, num_classes, 1)
>>> "tiny_example" in list_models()
True
>>> create_model("tiny_example", num_classes=4, in_channels=None).out_channels
4
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from pixelwise.core.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a model factory under its function name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. Keyword arguments that are ``None`` are dropped so the
    model's own defaults hold (timm's "pruned kwargs"); unknown ones are an error.

    The arguments that built the model are stored as ``model.init_kwargs`` (with ``name``) so a
    checkpoint can rebuild it alone.
    """
    if name not in _MODELS:
        raise ConfigError(f"unknown model '{name}'; choose one of {', '.join(list_models())} "
                          "(see `pixelwise models`)")
    fn = _MODELS[name]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(f"model '{name}' has no option '{unknown[0]}'; its options are "
                              f"{', '.join(p for p in params)}")
    model = fn(**kwargs)
    model.model_name = name
    model.init_kwargs = dict(kwargs)
    return model


def describe_model(name: str) -> str:
    """The first line of a model factory's docstring."""
    doc = (_MODELS[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
