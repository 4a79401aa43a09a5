"""Export a trained model to ONNX with dynamic batch, height and width.

The graph takes what the PyTorch model takes: float images ``(N, C, H, W)`` normalised as
``(x / 255 - mean) / std``, and returns logits ``(N, num_classes, H, W)`` at the input size (the
padding the network needs is inside the graph). The checkpoint's metadata travels in the ONNX
file's ``metadata_props`` under ``"pixelwise"`` (model, classes, palette, ignore index, mean/std,
training size, version), so a runtime needs nothing else; :func:`read_onnx_meta` reads it back.

torch.onnx's exporter (``dynamo=True``, opset 18) is used because it exports every registered model,
SegNet's max-unpooling included, which the older TorchScript exporter cannot.

>>> import tempfile, os, pixelwise
>>> from pixelwise.data.classes import get_preset
>>> from pixelwise.training.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> path = export_onnx(model, meta, os.path.join(tempfile.mkdtemp(), "m.onnx"))
>>> read_onnx_meta(path).model, compare_with_onnxruntime(model, path, (1, 3, 37, 50)) < 1e-4
('unet', True)
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from pixelwise.errors import CheckpointError, ConfigError, PixelwiseError
from pixelwise.training.checkpoint import CheckpointMeta, load_checkpoint, make_readable

OPSET = 18
EXPORT_FORMATS = ("onnx",)


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(f"ONNX export needs the '{module}' package; pip install 'pixelwise[onnx]'") from None


def export_onnx(model: nn.Module, meta: CheckpointMeta, path: str | Path, opset: int = OPSET,
                overwrite: bool = False) -> Path:
    """Write ``model`` (any registered architecture) to ``path`` as ONNX with ``meta`` embedded."""
    for module in ("onnx", "onnxscript"):
        _require(module)
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: already exists; pass --overwrite to replace it or choose another --out")
    model = getattr(model, "_orig_mod", model).float().cpu().eval()
    # Batch 2 and a size every network accepts as is; the dims are symbolic, so other sizes work too.
    example = torch.zeros(2, in_channels(model), 64, 96)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    log = io.StringIO()
    try:
        # The exporter narrates every step on stdout and warns about internals; keep that for errors only.
        with warnings.catch_warnings(), contextlib.redirect_stdout(log):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), None, dynamo=True, opset_version=opset,
                                        input_names=["image"], output_names=["logits"],
                                        dynamic_shapes=(dims,), external_data=False)
    except Exception as e:  # the exporter raises many kinds; none is the user's fault to debug here
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:300]
        raise PixelwiseError(f"{path}: ONNX export of '{meta.model}' failed ({first}); try another --opset "
                             "or report the model and options") from None
    program.model.metadata_props["pixelwise"] = meta.to_json()
    program.model.producer_name = "pixelwise"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.redirect_stdout(log):
        program.save(str(tmp))
    make_readable(tmp)
    os.replace(tmp, path)  # an interrupted export never leaves half a file at the destination
    return path


def in_channels(model: nn.Module) -> int:
    """Input channels of a registered model (its init kwargs, else its first convolution)."""
    if "in_channels" in getattr(model, "init_kwargs", {}):
        return int(model.init_kwargs["in_channels"])
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return first.in_channels


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, fmt: str = "onnx",
                      opset: int = OPSET, overwrite: bool = False) -> Path:
    """Export the model of a ``.safetensors`` checkpoint; ``out`` defaults to it with an ``.onnx`` suffix."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose one of {', '.join(EXPORT_FORMATS)}")
    model, meta = load_checkpoint(checkpoint)
    out = Path(out) if out is not None else Path(checkpoint).with_suffix(".onnx")
    return export_onnx(model, meta, out, opset, overwrite)


def read_onnx_meta(path: str | Path) -> CheckpointMeta:
    """The pixelwise metadata of an exported ONNX file."""
    _require("onnx")
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf decode errors have no common base class
        raise CheckpointError(f"{path}: not a readable ONNX file ({e.__class__.__name__}); export it again") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "pixelwise" not in props:
        raise CheckpointError(f"{path}: ONNX file without pixelwise metadata; export it with `pixelwise export`")
    return CheckpointMeta.from_json(props["pixelwise"])


def compare_with_onnxruntime(model: nn.Module, path: str | Path, shape: tuple[int, int, int, int],
                             seed: int = 0) -> float:
    """Max absolute difference between PyTorch fp32 and onnxruntime logits on random input of ``shape``."""
    _require("onnxruntime")
    import onnxruntime as ort

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = getattr(model, "_orig_mod", model).float().eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"image": x.numpy()})
    if logits.shape != reference.shape:
        return float("inf")
    return float(np.abs(logits - reference).max())
