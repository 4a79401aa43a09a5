"""Export a trained model to ONNX or OpenVINO with dynamic batch, height and width.

The graph takes what the PyTorch model takes: float images ``(N, C, H, W)`` normalised as
``(x / 255 - mean) / std``, and returns logits ``(N, num_classes, H, W)`` at the input size (the
padding the network needs is inside the graph). The checkpoint's metadata (model, classes,
normalisation, training size, version) travels inside the file; :func:`read_model_meta` reads it back.

One module per format; importing this package imports every module in it, so a new format is one new
file with a ``@register_exporter("name")`` class (see :mod:`pixelwise.inference.export.base`).
:func:`pixelwise.inference.compare.compare_with_runtime` checks an exported file against PyTorch.

>>> import tempfile, os, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> checkpoint = os.path.join(tempfile.mkdtemp(), "best.safetensors")
>>> save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, get_preset("binary")))
>>> path = export_checkpoint(checkpoint, fmt="onnx")
>>> path.name, read_model_meta(path).model, list_export_formats()[:2]
('best.onnx', 'unet', ['onnx', 'openvino'])
"""

from __future__ import annotations

import importlib
import pkgutil

from pixelwise.inference.export.base import (
    EXPORTERS,
    OPSET,
    Exporter,
    export_checkpoint,
    exporter_for_file,
    list_export_formats,
    read_model_meta,
    register_exporter,
)
from pixelwise.inference.export.onnx_file import export_onnx, read_onnx_meta
from pixelwise.inference.export.openvino_ir import export_openvino, read_openvino_meta

# Every module of this package registers its format on import; no list to keep up to date.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EXPORTERS", "OPSET", "Exporter", "export_checkpoint", "export_onnx", "export_openvino", "exporter_for_file",
           "list_export_formats", "read_model_meta", "read_onnx_meta", "read_openvino_meta", "register_exporter"]
