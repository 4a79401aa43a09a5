"""Check an exported file against PyTorch: the same model, the same random input, the largest difference.

It sits above both :mod:`pixelwise.inference.export` (which writes the file) and
:mod:`pixelwise.inference.backends` (which runs it), so neither imports the other's caller.

>>> import tempfile
>>> from pathlib import Path
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.inference.export import export_onnx
>>> from pixelwise.models import create_model
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> path = Path(tempfile.mkdtemp()) / "m.onnx"
>>> _ = export_onnx(model, CheckpointMeta.for_model(model, get_preset("binary")), path)
>>> compare_with_runtime(model, path, (1, 3, 37, 50)) < 1e-4
True
>>> retrained = create_model("unet", num_classes=2, base_filters=4, depth=2)  # other random weights
>>> compare_with_runtime(retrained, path, (1, 3, 37, 50)) > 1e-3
True
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.inference.backends import open_backend


def compare_with_runtime(model: nn.Module, path: str | Path, shape: tuple[int, int, int, int],
                         seed: int = 0) -> float:
    """Max absolute difference between PyTorch fp32 logits and the exported file's (onnxruntime for
    ``.onnx``, OpenVINO fp32 for ``.xml``) on random input of ``shape``."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = getattr(model, "_orig_mod", model).float().eval()(x)
    logits = open_backend(path, "auto", "cpu", precision="fp32")(x)
    if logits.shape != reference.shape:
        return float("inf")
    return float((logits - reference).abs().max())
