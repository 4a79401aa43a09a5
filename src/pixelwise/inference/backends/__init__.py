"""Runtimes that turn a batch of normalised images into logits: PyTorch, onnxruntime and OpenVINO.

Every backend is called the same way, ``backend(images) -> logits`` with float ``(N, C, H, W)`` in
and float32 ``(N, num_classes, H, W)`` out, and carries the model's metadata as ``backend.meta``,
so the predictor does not care which one runs.

``open_backend(source, "auto")`` picks the fastest one available for ``source``:

* a ``.xml`` file (OpenVINO IR) runs on OpenVINO, a ``.onnx`` file on onnxruntime;
* a checkpoint on a GPU runs in PyTorch (bf16/fp16 autocast per ``--precision``);
* a checkpoint on a CPU runs on OpenVINO when it is installed and its conversion is ready (``pixelwise
  train`` writes ``best.xml`` beside ``best.safetensors``; or one cached earlier), or the job is big
  enough to pay for a one-time conversion (``AUTO_OPENVINO_MIN_IMAGES`` images, the break-even measured
  in :mod:`pixelwise.inference.backends.choose`). Otherwise PyTorch.
* a list of checkpoints (an ensemble, :mod:`pixelwise.models.ensemble`) runs in PyTorch; exported as one
  file (``pixelwise export A B``), it runs like any exported file.

One module per backend; importing this package imports every module in it, so a new backend is one
new file with a ``@register_backend("name")`` class (see :mod:`pixelwise.inference.backends.base`).

>>> import pixelwise, torch
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> model.meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> backend = open_backend(model, "torch", precision="fp32")
>>> backend.name, backend(torch.zeros(1, 3, 20, 30)).shape
('torch', torch.Size([1, 2, 20, 30]))
>>> sorted(list_backends())[:3]
['onnxruntime', 'openvino', 'torch']
"""

from __future__ import annotations

import importlib
import pkgutil

from pixelwise.inference.backends.base import BACKENDS, Backend, list_backends, register_backend
from pixelwise.inference.backends.choose import (
    AUTO_OPENVINO_MIN_IMAGES,
    auto_backend,
    converted_ir_path,
    converted_path,
    open_backend,
    ready_conversion,
    write_conversion_beside,
)

# Every module of this package registers its backend on import; no list to keep up to date.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["AUTO_OPENVINO_MIN_IMAGES", "BACKENDS", "Backend", "auto_backend", "converted_ir_path", "converted_path",
           "list_backends", "open_backend", "ready_conversion", "register_backend", "write_conversion_beside"]
