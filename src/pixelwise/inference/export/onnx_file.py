"""``onnx``: the model as one ONNX file with dynamic batch, height and width, metadata inside.

The checkpoint's metadata travels in the file's ``metadata_props`` under ``"pixelwise"`` (model,
classes, palette, ignore index, mean/std, training size, version), so a runtime needs nothing else;
:func:`read_onnx_meta` reads it back.

torch.onnx's exporter (``dynamo=True``, opset 18) is used because it exports every registered model,
SegNet's max-unpooling included, which the older TorchScript exporter cannot.

>>> import tempfile, os, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> path = export_onnx(model, meta, os.path.join(tempfile.mkdtemp(), "m.onnx"))
>>> read_onnx_meta(path).model, in_channels(model)
('unet', 3)
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import CheckpointError, PixelwiseError
from pixelwise.core.files import atomic_path
from pixelwise.core.optional import import_optional
from pixelwise.inference.export.base import OPSET, Exporter, check_destination, register_exporter
from pixelwise.models.checkpoint import CheckpointMeta


def export_onnx(model: nn.Module, meta: CheckpointMeta, path: str | Path, opset: int = OPSET,
                overwrite: bool = False) -> Path:
    """Write ``model`` (any registered architecture) to ``path`` as ONNX with ``meta`` embedded."""
    for module in ("onnx", "onnxscript"):
        import_optional(module, extra="onnx", purpose="ONNX export")
    path = check_destination(path, overwrite)
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
    # An interrupted export never leaves half a file at the destination.
    with contextlib.redirect_stdout(log), atomic_path(path) as tmp:
        program.save(str(tmp))
    return path


def in_channels(model: nn.Module) -> int:
    """Input channels of a registered model (its init kwargs, else its first convolution)."""
    if "in_channels" in getattr(model, "init_kwargs", {}):
        return int(model.init_kwargs["in_channels"])
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return first.in_channels


def read_onnx_meta(path: str | Path) -> CheckpointMeta:
    """The pixelwise metadata of an exported ONNX file."""
    onnx = import_optional("onnx", extra="onnx", purpose="reading ONNX models")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf decode errors have no common base class
        raise CheckpointError(f"{path}: not a readable ONNX file ({e.__class__.__name__}); export it again") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "pixelwise" not in props:
        raise CheckpointError(f"{path}: ONNX file without pixelwise metadata; export it with `pixelwise export`")
    return CheckpointMeta.from_json(props["pixelwise"])


@register_exporter("onnx")
class OnnxExporter(Exporter):
    """ONNX: one .onnx file, for onnxruntime (or OpenVINO, or any ONNX runtime)."""

    suffix = ".onnx"
    title = "ONNX"
    export = staticmethod(export_onnx)
    read_meta = staticmethod(read_onnx_meta)
