"""``openvino``: the model as OpenVINO IR (``model.xml`` + its weights in ``model.bin``), metadata inside.

The route is PyTorch -> ONNX (:mod:`pixelwise.inference.export.onnx_file`, which handles every
registered model) -> OpenVINO; the IR keeps dynamic batch, height and width, and carries the
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
from pathlib import Path

import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.core.files import atomic_path, remove_quietly
from pixelwise.core.optional import import_optional
from pixelwise.inference.export.base import OPSET, Exporter, check_destination, register_exporter
from pixelwise.inference.export.onnx_file import export_onnx
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
        onnx_path = export_onnx(model, meta, staging / "model.onnx", opset)
        converted = ov.convert_model(str(onnx_path))
        converted.set_rt_info(meta.to_json(), ["pixelwise"])
        ov.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
        # The .bin first: a reader that finds the new .xml also finds its weights.
        for written, destination in ((staging / "model.bin", path.with_suffix(".bin")), (staging / "model.xml", path)):
            with atomic_path(destination) as tmp:
                os.replace(written, tmp)
    finally:
        remove_quietly(staging)
    return path


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
