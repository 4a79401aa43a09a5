"""What every segmentation model shares: the :class:`SegmentationModel` base class and output geometry.

A model subclasses :class:`SegmentationModel`, builds its layers in ``__init__``, sets ``self.multiple``
(what H and W must divide by) and implements :meth:`~SegmentationModel.forward_padded`. The base class's
``forward`` pads any input to that multiple, runs ``forward_padded``, resizes the logits to the padded
size if the network returns them at another stride, and crops them back to the input size.

>>> import torch
>>> class Halves(SegmentationModel):
...     '''A 2x2 stride-2 conv: logits at half the padded size, which the base class resizes.'''
...     def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
...         super().__init__()
...         self.head = torch.nn.Conv2d(in_channels, num_classes, 2, stride=2)
...         self.multiple = 2
...     def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
...         return self.head(x)
>>> model = Halves(4, in_channels=1)
>>> model(torch.zeros(1, 1, 7, 9)).shape, model.init_kwargs
(torch.Size([1, 4, 7, 9]), {'num_classes': 4, 'in_channels': 1})
>>> logits_at_size(torch.zeros(2, 10, 12), image_size=(8, 9), out_size=(16, 18)).shape
torch.Size([2, 16, 18])
"""

from __future__ import annotations

import inspect
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SegmentationModel(nn.Module, metaclass=ABCMeta):
    """Base class of every registered model: ``forward(x)`` is logits ``(N, num_classes, H, W)`` for any H, W.

    A subclass implements :meth:`forward_padded` and sets ``multiple``; the base class does the rest.
    ``init_kwargs`` holds the arguments the model was built with (``None`` values dropped, as
    :func:`~pixelwise.models.registry.create_model` drops them), whether it was built by ``create_model``
    or by calling the class, so a checkpoint rebuilds the model from them alone. ``model_name`` is the
    name :func:`~pixelwise.models.registry.register_model` registered the class under.

    A family with an encoder / decoder / head split keeps them in the attributes ``encoder``, ``decoder``
    and ``head``: fine-tuning (``training/finetune.py``) freezes or slows down ``model.encoder``.
    """

    model_name: str = ""  # set by register_model on the registered class
    multiple: int = 1  # forward_padded's input has H and W divisible by this
    init_kwargs: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> SegmentationModel:
        model = super().__new__(cls)
        # Recorded here, not in __init__: __new__ sees the caller's arguments once, before any subclass's
        # __init__ passes its own on to a parent class. object.__setattr__ because nn.Module is not set up yet.
        object.__setattr__(model, "init_kwargs", bound_init_kwargs(cls, args, kwargs))
        return model

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass is another model: it must not save checkpoints under its parent's registered name.
        cls.model_name = ""
        if any(p.kind is p.VAR_POSITIONAL for p in init_parameters(cls).values()):
            raise TypeError(f"{cls.__name__}.__init__ takes *args; a model's arguments need names, so a checkpoint "
                            "can rebuild it from them")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded, _ = pad_to_multiple(self.transform_input(x), self.multiple)
        logits = self.forward_padded(padded)
        # Networks whose output stride is not 1 (DeepLabV3+'s stride-4 head, U-Net over an encoder whose
        # first feature is at stride 4) give smaller logits: bring them to the padded input's size.
        if logits.shape[-2:] != padded.shape[-2:]:
            logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the model does to the unpadded input before padding: nothing here (U-Net adds training noise)."""
        return x

    @abstractmethod
    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for ``x``, whose H and W divide by ``self.multiple``; any output size (see ``forward``)."""


def init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The parameters of ``cls.__init__`` without ``self``: the options a model class takes."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return {p.name: p for p in parameters}


def bound_init_kwargs(cls: type, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``cls(*args, **kwargs)``'s arguments by name (a ``**kwargs`` parameter flattened), ``None`` values dropped.

    >>> class Example:
    ...     def __init__(self, a: int = 1, b: str | None = None, **more: Any) -> None: ...
    >>> bound_init_kwargs(Example, (5,), {"b": None, "c": 2})
    {'a': 5, 'c': 2}
    """
    parameters = init_parameters(cls)
    signature = inspect.Signature(list(parameters.values()))
    bound = signature.bind_partial(*args, **kwargs).arguments
    named: dict[str, Any] = {}
    for name, value in bound.items():
        if parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        else:
            named[name] = value
    return {k: v for k, v in named.items() if v is not None}


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad the bottom and right of ``x`` so H and W divide by ``multiple``; also returns the old H, W.

    Inputs are normalised, so zero is the dataset's mean colour: the least surprising fill.

    >>> padded, size = pad_to_multiple(torch.ones(1, 3, 5, 7), 4)
    >>> padded.shape, size, float(padded[..., 5:, :].abs().sum())
    (torch.Size([1, 3, 8, 8]), (5, 7), 0.0)
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    # Always pad (by 0 when nothing is needed): an `if` here would be frozen by ONNX tracing, and a graph
    # traced on a size that needs no padding would then skip it for every other size.
    return F.pad(x, (0, pad_w, 0, pad_h)), (h, w)


def logits_at_size(logits: torch.Tensor, image_size: Sequence[int], out_size: Sequence[int]) -> torch.Tensor:
    """Crop one item's ``(C, H, W)`` logits to its unpadded image size, then resize to ``out_size`` (bilinear).

    float32 logits on the CPU are resized by OpenCV, one class plane at a time, each written straight into
    its place in the result (``dst``): for 11 classes from 352x480 to 360x480 it took 1.1 ms on one core, against
    8.1 ms resizing the planes and stacking them, and 11 ms in torch; and it releases the GIL, so a prediction
    pipeline's other threads go on meanwhile. The values agree with torch's ``interpolate`` to ~1e-4.
    """
    logits = logits[:, : int(image_size[0]), : int(image_size[1])]
    size = (int(out_size[0]), int(out_size[1]))
    if tuple(logits.shape[-2:]) == size:
        return logits
    if logits.device.type == "cpu" and logits.dtype == torch.float32 and not logits.requires_grad:
        resized = np.empty((logits.shape[0], *size), np.float32)
        for plane, out in zip(logits.numpy(), resized, strict=True):
            cv2.resize(plane, size[::-1], dst=out, interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(resized)
    return F.interpolate(logits[None].float(), size=size, mode="bilinear", align_corners=False)[0]
