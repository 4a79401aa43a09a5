"""``openvino``: the model as OpenVINO IR (``model.xml`` + its weights in ``model.bin``), metadata inside.

Two routes, the cheaper first: OpenVINO's own PyTorch converter (``ov.convert_model(model)``, which traces
the model), kept only when the IR it makes gives PyTorch's logits at an odd size and another batch (so no
shape was frozen by the trace); else PyTorch -> ONNX (:mod:`pixelwise.inference.export.onnx_file`, which
handles every registered model, SegNet's max-unpooling included, which tracing cannot) -> OpenVINO. On the
CamVid recipe's U-Net (EfficientNet-Lite0) the first took 11 s of CPU and the ONNX route 42 s, in one run on
the shared development CPU (both IRs within 2e-5 of PyTorch); on quiet cores the first takes about 3 s. That
is what ``train`` adds when it writes the IR, and what ``predict`` pays when it converts. The IR keeps
dynamic batch, height and width, names its input ``image`` and its output ``logits``, and carries the
checkpoint's metadata in its runtime info under ``"pixelwise"``.

>>> import tempfile, pixelwise
>>> from pathlib import Path
>>> from pixelwise.core.optional import is_installed
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> meta, folder = CheckpointMeta.for_model(model, get_preset("binary")), Path(tempfile.mkdtemp())
>>> if is_installed("openvino"):
...     path = export_openvino(model, meta, folder / "m.xml")
...     assert read_openvino_meta(path).classes == meta.classes
...     assert sorted(p.name for p in folder.iterdir()) == ["m.bin", "m.xml"]  # nothing else left behind
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.core.files import atomic_path, remove_quietly
from pixelwise.core.optional import import_optional
from pixelwise.inference.export.base import OPSET, Exporter, check_destination, register_exporter
from pixelwise.inference.export.onnx_file import export_onnx, in_channels
from pixelwise.inference.openvino_core import openvino_core
from pixelwise.models.checkpoint import CheckpointMeta


def export_openvino(model: nn.Module, meta: CheckpointMeta, path: str | Path, overwrite: bool = False,
                    opset: int = OPSET) -> Path:
    """Write ``model`` as OpenVINO IR (``path`` = ``.xml``, weights beside it in ``.bin``) with ``meta`` inside;
    ``opset`` is that of the intermediate ONNX graph."""
    ov = import_optional("openvino", extra="openvino", purpose="OpenVINO export")
    path = Path(path)
    if path.suffix != ".xml":
        raise ConfigError(f"{path}: an OpenVINO model is a .xml file (its weights go beside it in .bin)")
    check_destination(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    # OpenVINO writes the .xml and the .bin together, so both are made in a hidden folder beside the
    # destination and then moved into place one at a time.
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
    try:
        converted = convert_traced(ov, model)
        if converted is None:
            converted = ov.convert_model(str(export_onnx(model, meta, staging / "model.onnx", opset)))
        converted.set_rt_info(meta.to_json(), ["pixelwise"])
        ov.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
        # The .bin first: a reader that finds the new .xml also finds its weights.
        for written, destination in ((staging / "model.bin", path.with_suffix(".bin")), (staging / "model.xml", path)):
            with atomic_path(destination) as tmp:
                os.replace(written, tmp)
    finally:
        remove_quietly(staging)
    return path


def convert_traced(ov: Any, model: nn.Module, tolerance: float = 1e-3) -> Any | None:
    """``model`` converted by OpenVINO's PyTorch converter, or ``None`` when it cannot trace it or the result's
    logits differ from PyTorch's (by more than ``tolerance`` x their largest magnitude) on a random image of an
    odd size (67x93: the network pads it inside the graph) at a batch other than the trace's."""
    model = getattr(model, "_orig_mod", model).float().cpu().eval()
    channels = in_channels(model)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer warns about every Python-level shape computation
            converted = ov.convert_model(model, example_input=torch.zeros(2, channels, 64, 96),
                                         input=[ov.PartialShape([-1, channels, -1, -1])])
    except Exception:  # the converter raises many kinds; the ONNX route handles every registered model
        return None
    converted.inputs[0].get_tensor().set_names({"image"})  # the names the ONNX route gives
    converted.outputs[0].get_tensor().set_names({"logits"})
    x = torch.randn(1, channels, 67, 93, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    compiled = openvino_core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    logits = np.asarray(compiled(x.numpy())[0])
    if logits.shape != reference.shape:
        return None
    return converted if np.abs(logits - reference).max() <= tolerance * max(1.0, np.abs(reference).max()) else None


def read_openvino_meta(path: str | Path) -> CheckpointMeta:
    """The pixelwise metadata of an exported OpenVINO ``.xml`` file."""
    core = openvino_core(purpose="reading OpenVINO models")
    try:
        text = core.read_model(str(path)).get_rt_info(["pixelwise"]).astype(str)
    except Exception as e:  # a missing .bin, a damaged XML or no pixelwise entry
        raise CheckpointError(f"{path}: not a pixelwise OpenVINO model ({str(e).strip().splitlines()[0][:120]}); "
                              "export it again with `pixelwise export --format openvino`") from None
    return CheckpointMeta.from_json(text)


@register_exporter("openvino")
class OpenVinoExporter(Exporter):
    """OpenVINO IR: a .xml file and its weights in a .bin beside it, for OpenVINO on Intel CPUs."""

    suffix = ".xml"
    title = "OpenVINO IR"
    read_meta = staticmethod(read_openvino_meta)

    @staticmethod
    def export(model: nn.Module, meta: CheckpointMeta, path: str | Path, opset: int = OPSET,
               overwrite: bool = False) -> Path:
        return export_openvino(model, meta, path, overwrite, opset)
