"""Export a trained model to ONNX or OpenVINO with dynamic batch, height and width.

The graph takes what the PyTorch model takes: float images ``(N, C, H, W)`` normalised as
``(x / 255 - mean) / std``, and returns logits ``(N, num_classes, H, W)`` at the input size (the
padding the network needs is inside the graph). The checkpoint's metadata travels in the ONNX
file's ``metadata_props`` under ``"pixelwise"`` (model, classes, palette, ignore index, mean/std,
training size, version), so a runtime needs nothing else; :func:`read_onnx_meta` reads it back.

torch.onnx's exporter (``dynamo=True``, opset 18) is used because it exports every registered model,
SegNet's max-unpooling included, which the older TorchScript exporter cannot.

>>> import tempfile, os, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> path = export_onnx(model, meta, os.path.join(tempfile.mkdtemp(), "m.onnx"))
>>> read_onnx_meta(path).model, compare_with_runtime(model, path, (1, 3, 37, 50)) < 1e-4
('unet', True)
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError, PixelwiseError
from pixelwise.core.files import atomic_path, make_readable
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint

OPSET = 18
EXPORT_FORMATS = ("onnx", "openvino")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml"}


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


def export_openvino(model: nn.Module, meta: CheckpointMeta, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``model`` as OpenVINO IR (``path`` = ``.xml``, weights beside it in ``.bin``) with ``meta`` inside.

    The route is PyTorch -> ONNX (the exporter above, which handles every registered model) -> OpenVINO;
    the IR keeps dynamic batch, height and width.
    """
    try:
        import openvino as ov
    except ImportError:
        raise ConfigError("OpenVINO export needs the 'openvino' package; pip install 'pixelwise[openvino]'") from None
    path = Path(path)
    if path.suffix != ".xml":
        raise ConfigError(f"{path}: an OpenVINO model is a .xml file (its weights go beside it in .bin)")
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: already exists; pass --overwrite to replace it or choose another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
    try:
        onnx_path = export_onnx(model, meta, staging / "model.onnx")
        converted = ov.convert_model(str(onnx_path))
        converted.set_rt_info(meta.to_json(), ["pixelwise"])
        ov.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
        # The .bin first: a reader that finds the new .xml also finds its weights.
        os.replace(staging / "model.bin", path.with_suffix(".bin"))
        os.replace(staging / "model.xml", path)
        for written in (path, path.with_suffix(".bin")):
            make_readable(written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, fmt: str = "onnx",
                      opset: int = OPSET, overwrite: bool = False) -> Path:
    """Export the model of a ``.safetensors`` checkpoint; ``out`` defaults to it with ``.onnx`` / ``.xml``."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose one of {', '.join(EXPORT_FORMATS)}")
    model, meta = load_checkpoint(checkpoint)
    out = Path(out) if out is not None else Path(checkpoint).with_suffix(SUFFIXES[fmt])
    if fmt == "openvino":
        return export_openvino(model, meta, out, overwrite)
    return export_onnx(model, meta, out, opset, overwrite)


def read_model_meta(path: str | Path) -> CheckpointMeta:
    """The pixelwise metadata of an exported ``.onnx`` or OpenVINO ``.xml`` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    if path.suffix.lower() == ".onnx":
        return read_onnx_meta(path)
    try:
        import openvino  # noqa: F401
    except ImportError:
        raise ConfigError("reading OpenVINO models needs 'openvino'; pip install 'pixelwise[openvino]'") from None
    try:
        from pixelwise.inference.backends import openvino_core

        text = openvino_core().read_model(str(path)).get_rt_info(["pixelwise"]).astype(str)
    except Exception as e:  # a missing .bin, a damaged XML or no pixelwise entry
        raise CheckpointError(f"{path}: not a pixelwise OpenVINO model ({str(e).strip().splitlines()[0][:120]}); "
                              "export it again with `pixelwise export --format openvino`") from None
    return CheckpointMeta.from_json(text)


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


def compare_with_runtime(model: nn.Module, path: str | Path, shape: tuple[int, int, int, int],
                         seed: int = 0) -> float:
    """Max absolute difference between PyTorch fp32 logits and the exported file's (onnxruntime for
    ``.onnx``, OpenVINO fp32 for ``.xml``) on random input of ``shape``."""
    from pixelwise.inference.backends import open_backend

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = getattr(model, "_orig_mod", model).float().eval()(x)
    logits = open_backend(path, "auto", "cpu", precision="fp32")(x)
    if logits.shape != reference.shape:
        return float("inf")
    return float((logits - reference).abs().max())
