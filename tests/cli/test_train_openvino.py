"""``train`` leaves the best checkpoint's OpenVINO IR beside it, and ``predict`` runs that IR, converting nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelwise.inference.backends import ready_conversion
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import load_checkpoint, save_checkpoint
from pixelwise.testing import run_main

pytest.importorskip("openvino", reason="pip install 'pixelwise[openvino]'")
pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")

TRAIN = ["--model-option", "base_filters=4", "--model-option", "depth=2", "--img-size", "32x48", "--epochs", "1",
         "--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32", "--no-plan"]


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    """One training run; its folder."""
    out = tmp_path_factory.mktemp("train-ir") / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), *TRAIN)
    assert result.returncode == 0, result.stderr
    assert f"openvino: {out / 'best.xml'}" in result.stdout
    return out


def test_train_writes_the_ir_beside_the_best_checkpoint(run):
    assert (run / "best.xml").is_file() and (run / "best.bin").is_file()
    assert ready_conversion([run / "best.safetensors"], "openvino") == run / "best.xml"


def test_predict_runs_the_ir_train_wrote_without_a_conversion(run, tiny_data, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("PIXELWISE_CACHE", str(cache))
    image = sorted((tiny_data / "images" / "val").glob("*.png"))[0]
    result = run_main("predict", str(run / "best.safetensors"), str(image), "--out", str(tmp_path / "pred"))
    assert result.returncode == 0, result.stderr
    assert "backend: openvino" in result.stdout  # one image: too few to pay a conversion, yet OpenVINO runs
    assert not cache.exists()  # nothing was converted
    labels = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_labels.png"))
    torch_labels = Predictor(run / "best.safetensors", backend="torch", precision="fp32").predict(image)
    assert (labels == torch_labels).mean() >= 0.99  # the IR is the checkpoint's model


def test_a_changed_checkpoint_no_longer_uses_the_old_ir(run, tmp_path):
    copy = tmp_path / "best.safetensors"
    copy.write_bytes((run / "best.safetensors").read_bytes())
    for name in ("best.xml", "best.bin"):
        (tmp_path / name).write_bytes((run / name).read_bytes())
    assert ready_conversion([copy], "openvino") == tmp_path / "best.xml"  # the same bytes: still this IR
    model, meta = load_checkpoint(copy)
    meta.extra["retrained"] = True  # other bytes, as a resumed or retrained run writes
    save_checkpoint(copy, model, meta)
    assert ready_conversion([copy], "openvino") is None
    assert Predictor(copy, num_images=1).backend.name == "torch"  # and a short job does not convert


def test_a_failed_export_is_a_warning_and_the_run_is_kept(tiny_data, tmp_path, monkeypatch):
    def broken(checkpoint, fmt):
        raise RuntimeError("the exporter cannot take this model")

    monkeypatch.setattr("pixelwise.cli.train.write_conversion_beside", broken)
    out = tmp_path / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), *TRAIN)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "the exporter cannot take this model" in result.stderr
    assert (out / "best.safetensors").is_file() and not (out / "best.xml").exists()
    assert "best val mIoU" in result.stdout


def test_no_openvino_writes_no_ir(tiny_data, tmp_path):
    out = tmp_path / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), *TRAIN, "--no-openvino")
    assert result.returncode == 0, result.stderr
    assert (out / "best.safetensors").is_file() and not (out / "best.xml").exists()


def test_int8_writes_the_quantized_model_with_its_report(tiny_data, tmp_path):
    pytest.importorskip("nncf", reason="pip install 'pixelwise[int8]'")
    out = tmp_path / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), *TRAIN, "--no-openvino", "--int8")
    assert result.returncode == 0, result.stderr
    assert f"int8: {out / 'best_int8.xml'}" in result.stdout and "labels agree on" in result.stdout
    assert (out / "best_int8.xml").is_file() and (out / "best_int8.bin").is_file()
    assert "best val mIoU" in result.stdout.splitlines()[-2]  # the run's report stays the last lines


def test_int8_without_nncf_is_a_warning_and_the_run_is_kept(tiny_data, tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("nncf is not installed: pip install 'pixelwise[int8]'")

    monkeypatch.setattr("pixelwise.inference.quantize.quantize_model", missing)
    out = tmp_path / "run"
    result = run_main("train", "--data", str(tiny_data), "--out", str(out), *TRAIN, "--no-openvino", "--int8")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "pixelwise[int8]" in result.stderr and "pixelwise quantize" in result.stderr
    assert (out / "best.safetensors").is_file() and not (out / "best_int8.xml").exists()
