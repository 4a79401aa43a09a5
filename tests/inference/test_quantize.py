"""int8 quantization (NNCF for OpenVINO, onnxruntime QDQ for ONNX): the model is written with its report,
runs like any exported model, labels like fp32, and bad input is one clear error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import pixelwise
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.io import read_image
from pixelwise.data.synthetic import CLASSES
from pixelwise.inference.export import export_checkpoint, read_model_meta
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.quantize import CalibrationImages, calibration_files, quantize_model
from pixelwise.inference.quantize_report import format_report, worst_class_drop
from pixelwise.models.checkpoint import CheckpointMeta, load_model, read_meta, save_checkpoint

pytest.importorskip("nncf", reason="pip install 'pixelwise[int8]'")
pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")

# The share of pixels whose int8 label must equal fp32's on the tiny model below (measured: 98.5% with NNCF,
# 98.9% with onnxruntime, on 4 images of 48x64). Lower than the 99% asked of a trained CamVid model: a random
# model's logits have far more near-ties, which int8 rounding flips.
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=CLASSES.num_classes, base_filters=4, depth=3)
    with torch.no_grad():  # confident, varied logits, so agreement measures int8 rather than ties
        model.head.weight.mul_(20)
    path = tmp_path_factory.mktemp("quantize") / "best.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, CLASSES, input_size=(48, 64)))
    return path


@pytest.fixture(scope="module")
def int8_ir(checkpoint, tiny_data):
    return quantize_model(checkpoint, tiny_data, log=lambda line: None)


def val_images(tiny_data) -> list[np.ndarray]:
    return [read_image(p) for p in sorted((tiny_data / "images" / "val").glob("*.png"))]


def test_quantize_writes_int8_ir_with_its_report(checkpoint, int8_ir, tiny_data):
    path, report = int8_ir
    assert path == checkpoint.with_name("best_int8.xml") and path.with_suffix(".bin").is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".quantize-")]  # staging removed
    stored = read_model_meta(path).extra["int8"]
    assert stored == json.loads(json.dumps(report))  # the whole report, as JSON keeps it
    assert stored["mode"] == "plain" and stored["calibration"]["images"] == 12  # tiny_data's training split
    assert stored["images"] == 4 and set(stored["miou"]) >= {"fp32", "int8"}
    assert set(stored["per_class_iou"]["int8"]) == set(CLASSES.names)
    assert stored["agreement"]["fp32"] == 1.0 and MIN_AGREEMENT <= stored["agreement"]["int8"] <= 1.0
    assert stored["speedup"]["fp32"] == 1.0 and stored["speedup"]["int8"] > 0
    # The weights were stored as int8: the .bin is far smaller than the fp32 model's.
    fp32 = export_checkpoint(checkpoint, path.with_name("fp32.xml"), fmt="openvino")
    assert path.with_suffix(".bin").stat().st_size < 0.5 * fp32.with_suffix(".bin").stat().st_size
    assert "mIoU" in format_report(report) and worst_class_drop(report)[0] in CLASSES.names


def test_predict_with_int8_model_agrees_with_fp32(checkpoint, int8_ir, tiny_data):
    images = val_images(tiny_data)
    fp32 = Predictor(checkpoint, backend="torch", precision="fp32").predict_batch(images)
    predictor = Predictor(int8_ir[0], precision="fp32")  # auto: OpenVINO runs the .xml
    assert predictor.backend.precision == "int8+fp32"  # what serve's /model and evaluate's "backend" report
    int8 = predictor.predict_batch(images)
    same = sum(int((a == b).sum()) for a, b in zip(fp32, int8, strict=True)) / sum(a.size for a in fp32)
    assert same >= MIN_AGREEMENT
    assert same == pytest.approx(int8_ir[1]["agreement"]["int8"], abs=0.02)  # the report measured the same


@pytest.mark.parametrize("predict_scale", [1.0, 1.5])
def test_calibration_images_are_what_the_predictor_feeds_the_model(checkpoint, tiny_data, tmp_path, predict_scale):
    files = calibration_files(tiny_data, "train", 3)
    scaled = tmp_path / "scaled.safetensors"
    save_checkpoint(scaled, load_model(checkpoint), dataclasses.replace(read_meta(checkpoint),
                                                                        predict_scale=predict_scale))
    predictor = Predictor(scaled, backend="torch", precision="fp32")
    seen = []
    predictor.backend = lambda images: seen.append(images) or torch.zeros(1, CLASSES.num_classes, *images.shape[2:])
    predictor.predict(files[1])
    assert seen[0].shape[2:] == (round(48 * predict_scale), round(64 * predict_scale))
    np.testing.assert_allclose(CalibrationImages(files, predictor.meta)[1], seen[0].numpy(), atol=1e-6)


def test_the_report_scores_models_fed_as_predict_feeds_them(checkpoint, tiny_data, tmp_path):
    """A checkpoint predicted enlarged (predict_scale): fp32 and int8 are compared at that size, so the
    report's fp32 mIoU is the one `pixelwise evaluate` gives the same model."""
    from pixelwise.inference.score import evaluate_exported

    scaled = tmp_path / "scaled.safetensors"
    save_checkpoint(scaled, load_model(checkpoint), dataclasses.replace(read_meta(checkpoint), predict_scale=1.5))
    path, report = quantize_model(scaled, tiny_data, samples=4, log=lambda line: None)
    assert report["predict_scale"] == 1.5 and read_model_meta(path).predict_scale == 1.5
    fp32_ir = export_checkpoint(scaled, tmp_path / "fp32.xml", "openvino")
    evaluated = evaluate_exported(fp32_ir, tiny_data, backend="openvino", precision="fp32")
    assert evaluated["predict_scale"] == 1.5
    assert report["miou"]["fp32"] == pytest.approx(evaluated["miou"], abs=1e-6)
    assert report["agreement"]["int8"] >= MIN_AGREEMENT


def test_calibration_files_spread_over_a_dataset_split_or_a_folder(tiny_data):
    files = calibration_files(tiny_data, "train", 4)
    every = sorted((tiny_data / "images" / "train").glob("*.png"))
    assert files == every[::3]  # 4 of 12, evenly spaced, not the first four
    assert calibration_files(tiny_data / "images" / "val", "train", 300) == sorted(
        (tiny_data / "images" / "val").glob("*.png"))  # a plain folder of images: all of them


@pytest.mark.slow
def test_onnx_qdq_int8_model(checkpoint, tiny_data, tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    path, report = quantize_model(checkpoint, tiny_data, tmp_path / "m_int8.onnx", fmt="onnx", log=lambda line: None)
    assert read_model_meta(path).extra["int8"]["format"] == "onnx"
    assert report["float_layers"] == []  # every convolution runs in int8
    assert report["agreement"]["int8"] >= MIN_AGREEMENT
    images = val_images(tiny_data)
    fp32 = Predictor(checkpoint, backend="torch", precision="fp32").predict_batch(images)
    predictor = Predictor(path)  # auto: onnxruntime runs the .onnx
    assert predictor.backend.precision == "int8+fp32"
    int8 = predictor.predict_batch(images)
    assert sum(int((a == b).sum()) for a, b in zip(fp32, int8, strict=True)) / sum(a.size for a in fp32) >= 0.95


@pytest.mark.slow
def test_accuracy_aware_mode_meets_its_drop(checkpoint, tiny_data, tmp_path):
    path, report = quantize_model(checkpoint, tiny_data, tmp_path / "aa.xml", max_drop=0.5, log=lambda line: None)
    assert report["mode"] == "accuracy-aware" and report["max_drop_points"] == 0.5
    assert 100 * (report["miou"]["fp32"] - report["miou"]["int8"]) <= 0.5 + 1e-6
    assert read_model_meta(path).extra["int8"]["mode"] == "accuracy-aware"


def test_bad_input_is_one_clear_error(checkpoint, int8_ir, tiny_data, tmp_path):
    with pytest.raises(DataError, match="calibration folder not found"):
        quantize_model(checkpoint, tmp_path / "nowhere", tmp_path / "a.xml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images to calibrate on"):
        quantize_model(checkpoint, tmp_path / "empty", tmp_path / "a.xml")
    with pytest.raises(ConfigError, match="pass --val with a labelled dataset"):
        quantize_model(checkpoint, tiny_data / "images" / "train", tmp_path / "a.xml")
    with pytest.raises(ConfigError, match="already exists"):
        quantize_model(checkpoint, tiny_data)  # best_int8.xml was written by the fixture
    with pytest.raises(ConfigError, match="writes a .xml file"):
        quantize_model(checkpoint, tiny_data, tmp_path / "a.onnx")
    with pytest.raises(ConfigError, match="already an int8 model"):
        quantize_model(int8_ir[0], tiny_data, tmp_path / "again.xml")
    with pytest.raises(ConfigError, match="use --format openvino"):
        quantize_model(checkpoint, tiny_data, tmp_path / "a.onnx", fmt="onnx", max_drop=0.5)


def test_missing_nncf_names_the_extra(checkpoint, tiny_data, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nncf", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'pixelwise\[int8\]'"):
        quantize_model(checkpoint, tiny_data, tmp_path / "a.xml")
