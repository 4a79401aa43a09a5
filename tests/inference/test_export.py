"""ONNX export: every registered model, dynamic batch/height/width, same logits as PyTorch, metadata inside."""

from __future__ import annotations

import pytest
import torch

import pixelwise
from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.data.presets import get_preset
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import MODEL_VARIANTS as VARIANTS
from pixelwise.testing import run_cli, run_main

pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="pip install 'pixelwise[onnx]'")

from pixelwise.inference.compare import compare_with_runtime  # noqa: E402
from pixelwise.inference.export import (  # noqa: E402
    EXPORTERS,
    export_onnx,
    exporter_for_file,
    list_export_formats,
    read_model_meta,
    read_onnx_meta,
)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_every_model_exports_and_matches_pytorch(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = pixelwise.create_model(name, num_classes=3, **kwargs).eval()
    meta = CheckpointMeta.for_model(model, get_preset("binary"), input_size=(64, 96))
    path = export_onnx(model, meta, tmp_path / "m.onnx")
    # Sizes other than the traced 2x3x64x96: odd ones that need padding, another batch, a tall one.
    for shape in [(1, 3, 67, 93), (3, 3, 40, 52), (1, 3, 130, 33)]:
        assert compare_with_runtime(model, path, shape) < 1e-4, shape
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": torch.randn(1, 3, 67, 93).numpy()})
    assert logits.shape == (1, 3, 67, 93)


def test_metadata_travels_with_the_graph(tmp_path):
    model = pixelwise.create_model("unet", num_classes=12, base_filters=4, depth=2)
    classes = get_preset("camvid")
    meta = CheckpointMeta.for_model(model, classes, input_size=(192, 256))
    path = export_onnx(model, meta, tmp_path / "camvid.onnx")
    back = read_onnx_meta(path)
    assert back.classes == classes and back.input_size == (192, 256)
    assert back.mean == meta.mean and back.std == meta.std
    assert back.model == "unet" and back.model_kwargs["base_filters"] == 4
    assert back.version == pixelwise.__version__


def test_bad_onnx_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(CheckpointError, match="not a readable ONNX file|without pixelwise metadata"):
        read_onnx_meta(bad)


def test_cli_export_checks_the_graph_and_keeps_existing_files(tmp_path):
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    checkpoint = tmp_path / "best.safetensors"
    save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, get_preset("binary")))
    result = run_cli("export", str(checkpoint), "--format", "onnx")
    assert result.returncode == 0, result.stderr
    assert f"wrote {tmp_path / 'best.onnx'}" in result.stdout
    diff = float(result.stdout.split("max abs difference ")[1].split()[0])
    assert diff < 1e-4
    before = (tmp_path / "best.onnx").read_bytes()
    again = run_main("export", str(checkpoint))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    assert (tmp_path / "best.onnx").read_bytes() == before  # nothing already written is lost


@pytest.mark.parametrize("args,message", [
    (["--format", "tflite"], "unknown export format 'tflite'; choose one of onnx"),
    (["--out", "x.onnx"], "truncated or corrupt"),
])
def test_cli_export_bad_input(args, message, tmp_path):
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    checkpoint = tmp_path / "best.safetensors"
    save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, get_preset("binary")))
    if "truncated" in message:
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    result = run_main("export", str(checkpoint), *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_export_formats_are_registered_with_their_suffixes():
    assert list_export_formats()[:2] == ["onnx", "openvino"]
    assert EXPORTERS.get("onnx").suffix == ".onnx" and EXPORTERS.get("openvino").suffix == ".xml"
    assert exporter_for_file("runs/a/best.ONNX") is EXPORTERS.get("onnx")
    assert exporter_for_file("runs/a/best.safetensors") is None


def test_read_model_meta_needs_an_exported_file(tmp_path):
    with pytest.raises(CheckpointError, match="model file not found"):
        read_model_meta(tmp_path / "missing.onnx")
    other = tmp_path / "model.tflite"
    other.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"not an exported model \(those are .onnx, .xml files\)"):
        read_model_meta(other)
