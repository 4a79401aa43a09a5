"""``torch``: the model in PyTorch, on any device.

>>> import pixelwise, torch
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> backend = TorchBackend.from_model(model, meta, torch.device("cpu"), "fp32")
>>> backend.precision, backend(torch.zeros(1, 3, 16, 16)).shape
('fp32', torch.Size([1, 2, 16, 16]))
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pixelwise.core.device import autocast, compile_or_eager, resolve_precision
from pixelwise.inference.backends.base import Backend, register_backend
from pixelwise.models.checkpoint import CheckpointMeta


@register_backend("torch")
class TorchBackend(Backend):
    """Eager (or ``torch.compile``-d) PyTorch with autocast and channels_last where they pay."""

    title = "PyTorch"

    def __init__(self, model: nn.Module, meta: CheckpointMeta, device: torch.device, precision: str,
                 compile: bool = False) -> None:
        self.meta, self.device, self.precision = meta, device, precision
        # channels_last pays with reduced precision (bf16/fp16 kernels prefer it), not in fp32.
        self.channels_last = precision != "fp32"
        self.model = model.to(device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = compile_or_eager(self.model) if compile else self.model

    @classmethod
    def from_model(cls, model: nn.Module, meta: CheckpointMeta, device: torch.device, precision: str,
                   compile: bool = False) -> TorchBackend:
        """``precision`` may be ``auto``: the best the device runs well."""
        return cls(model, meta, device, resolve_precision(precision, device), compile)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            return self.forward(images).float()
