"""Scoring exported models: the same metrics as scoring the checkpoint in PyTorch."""

from __future__ import annotations

import pytest
import torch

import pixelwise
from pixelwise.data.synthetic import CLASSES
from pixelwise.inference.export import export_checkpoint
from pixelwise.inference.score import evaluate_exported
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.training.evaluate import evaluate_checkpoint

pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_model_scores_as_its_checkpoint(tiny_data, tmp_path, fmt):
    pytest.importorskip("onnxruntime" if fmt == "onnx" else "openvino")
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=CLASSES.num_classes, base_filters=4, depth=2)
    with torch.no_grad():
        model.head.weight.mul_(20)
    checkpoint = tmp_path / "best.safetensors"
    save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, CLASSES, input_size=(32, 48)))
    exported = export_checkpoint(checkpoint, fmt=fmt, out=tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'xml'}")
    reference = evaluate_checkpoint(checkpoint, tiny_data, device="cpu", precision="fp32", workers=0)
    scored = evaluate_exported(exported, tiny_data, precision="fp32", workers=0, json_path=tmp_path / "m.json")
    assert scored["images"] == reference["images"] == 4 and (tmp_path / "m.json").is_file()
    assert scored["miou"] == pytest.approx(reference["miou"], abs=1e-3)
    for name in CLASSES.names:  # every class's pixels counted alike, resized to the masks' size alike
        assert scored["per_class"][name]["pixels"] == reference["per_class"][name]["pixels"]
    assert scored["ece"] == pytest.approx(reference["ece"], abs=1e-3)
