"""``pixelwise quantize`` end to end, and ``evaluate``/``predict`` taking its int8 model like any other."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.data.synthetic import CLASSES
from pixelwise.inference.export import read_model_meta
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import assert_one_line_error, run_cli, run_main

pytest.importorskip("nncf", reason="pip install 'pixelwise[int8]'")
pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")


@pytest.fixture(scope="module")
def quantized(tiny_data, tmp_path_factory):
    """A tiny checkpoint and the int8 IR `pixelwise quantize` made of it, in a fresh process as a user runs it."""
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=CLASSES.num_classes, base_filters=4, depth=3)
    with torch.no_grad():  # confident logits: agreement then measures int8, not ties
        model.head.weight.mul_(20)
    checkpoint = tmp_path_factory.mktemp("cli-quantize") / "best.safetensors"
    save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, CLASSES, input_size=(48, 64)))
    result = run_cli("quantize", str(checkpoint), "--calib", str(tiny_data), "--samples", "8")
    assert result.returncode == 0, result.stderr
    return checkpoint, checkpoint.with_name("best_int8.xml"), result


def test_quantize_prints_and_stores_the_report(quantized):
    _, int8, result = quantized
    assert "calibrating on 8 images" in result.stdout
    for fragment in ("class IoU", "mIoU", "agreement", "speed-up", "int8 mIoU", f"wrote {int8}"):
        assert fragment in result.stdout, result.stdout
    report = read_model_meta(int8).extra["int8"]
    assert report["calibration"]["images"] == 8 and report["split"] == "val"
    assert f"{100 * report['miou']['int8']:.2f}%" in result.stdout  # what is printed is what is stored


def test_evaluate_and_predict_take_the_int8_model(quantized, tiny_data, tmp_path):
    checkpoint, int8, _ = quantized
    ev = run_main("evaluate", str(int8), "--data", str(tiny_data), "--precision", "fp32")
    assert ev.returncode == 0, ev.stderr
    written = json.loads(int8.with_name("best_int8_eval_val.json").read_text())  # not the checkpoint's eval_val.json
    assert "on openvino (int8+fp32)" in ev.stdout and written["images"] == 4  # the int8 model says so
    stored = read_model_meta(int8).extra["int8"]["miou"]["int8"]
    assert written["miou"] == pytest.approx(stored, abs=0.01)  # evaluate scores what quantize measured
    image = sorted((tiny_data / "images" / "val").glob("*.png"))[0]
    pred = run_main("predict", str(int8), str(image), "--out", str(tmp_path / "pred"), "--precision", "fp32")
    assert pred.returncode == 0, pred.stderr
    labels = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_labels.png"))
    fp32 = Predictor(checkpoint, backend="torch", precision="fp32").predict(image)
    assert (labels == fp32).mean() >= 0.95  # the tiny model's int8 labels agree on 98.5% (see tests/inference)


def test_evaluate_refuses_an_exported_model_in_an_ensemble(quantized, tiny_data):
    checkpoint, int8, _ = quantized
    assert_one_line_error(run_main("evaluate", str(checkpoint), str(int8), "--data", str(tiny_data)),
                          "best_int8.xml", "cannot join an ensemble")


def test_quantize_bad_input_is_one_error_line(quantized, tiny_data, tmp_path, monkeypatch):
    checkpoint, _, _ = quantized
    out = ["--out", str(tmp_path / "m.xml")]
    assert_one_line_error(run_main("quantize", str(checkpoint), "--calib", str(tmp_path / "missing"), *out),
                          "missing", "calibration folder not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_main("quantize", str(checkpoint), "--calib", str(tmp_path / "empty"), *out),
                          "empty", "no images to calibrate on")
    assert_one_line_error(run_main("quantize", str(tmp_path / "nope.safetensors"), "--calib", str(tiny_data), *out),
                          "nope.safetensors", "not found")
    assert_one_line_error(run_main("quantize", str(checkpoint), "--calib", str(tiny_data), "--format", "tflite"),
                          "tflite")
    monkeypatch.setitem(sys.modules, "nncf", None)  # as if the extra were not installed
    assert_one_line_error(run_main("quantize", str(checkpoint), "--calib", str(tiny_data), *out),
                          "pip install 'pixelwise[int8]'")
