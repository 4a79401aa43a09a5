"""Prediction backends: PyTorch, onnxruntime and OpenVINO give the same labels; auto picks and caches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.device import compile_or_eager
from pixelwise.core.errors import ConfigError
from pixelwise.data.presets import get_preset
from pixelwise.inference import backends
from pixelwise.inference.backends import BACKENDS, list_backends, open_backend
from pixelwise.inference.export import export_checkpoint, read_model_meta
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, load_model, save_checkpoint
from pixelwise.testing import run_main

pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=4, base_filters=4, depth=2)
    with torch.no_grad():  # confident, varied logits so label agreement measures the runtime, not ties
        model.head.weight.mul_(20)
    path = tmp_path_factory.mktemp("ckpt") / "best.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("camvid"), input_size=None))
    return path


def images(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (37 + 10 * k, 53, 3), dtype=np.uint8) for k in range(n)]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_runtimes_label_like_pytorch(checkpoint, backend):
    pytest.importorskip(backend)
    reference = Predictor(checkpoint, backend="torch", precision="fp32")
    other = Predictor(checkpoint, backend=backend, precision="fp32")
    assert other.backend.name == backend and other.classes == reference.classes
    for image in images():
        a, b = reference.predict(image), other.predict(image)
        assert a.shape == b.shape == image.shape[:2]
        assert (a == b).mean() >= 0.995


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_runtimes_that_take_concurrent_calls_answer_each_thread_its_own_logits(checkpoint, backend):
    """A server runs two batches at once on these runtimes (ModelService.default_workers): each thread must
    get the logits of its own images, never another thread's."""
    pytest.importorskip(backend)
    predictor = Predictor(checkpoint, backend=backend, precision="fp32")
    assert predictor.backend.concurrent_calls
    inputs = images(6)
    alone = [predictor.predict(image) for image in inputs]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(predictor.predict, inputs * 5))
    for k, labels in enumerate(together):
        assert np.array_equal(labels, alone[k % len(inputs)])


def test_auto_converts_for_big_jobs_and_reuses_the_conversion(checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path))  # no conversion from the other tests
    assert open_backend(checkpoint, "auto", "cpu", num_images=3).name == "torch"  # not worth converting
    assert not backends.converted_ir_path(checkpoint).exists()
    big = open_backend(checkpoint, "auto", "cpu", num_images=backends.AUTO_OPENVINO_MIN_IMAGES)
    assert big.name == "openvino" and backends.converted_ir_path(checkpoint).is_file()
    assert open_backend(checkpoint, "auto", "cpu", num_images=1).name == "openvino"  # cached now: free
    assert open_backend(checkpoint, "auto", "cpu", compile=True).name == "torch"  # --compile means PyTorch


def test_cli_predicts_from_exported_files(checkpoint, tmp_path):
    pytest.importorskip("openvino")
    folder = tmp_path / "in"
    folder.mkdir()
    for k, image in enumerate(images()):
        Image.fromarray(image).save(folder / f"img{k}.png")
    xml = export_checkpoint(checkpoint, tmp_path / "model.xml", "openvino")
    onnx = export_checkpoint(checkpoint, tmp_path / "model.onnx", "onnx")
    assert read_model_meta(xml).classes == read_model_meta(onnx).classes == get_preset("camvid")
    labels = {}
    for source, backend in [(checkpoint, "torch"), (onnx, "auto"), (xml, "auto")]:
        out = tmp_path / f"out-{backend}-{source.suffix}"
        result = run_main("predict", str(source), str(folder), "--out", str(out), "--workers", "1",
                          "--backend", backend, "--precision", "fp32")
        # --workers 1: DataLoader workers fork from a process that has run OpenVINO (it once crashed here).
        assert result.returncode == 0, result.stderr
        labels[source.suffix] = [np.array(Image.open(out / f"img{k}_labels.png")) for k in range(3)]
    assert "backend: openvino (fp32)" in result.stdout
    for suffix in (".onnx", ".xml"):
        agree = np.mean([np.mean(a == b) for a, b in zip(labels[".safetensors"], labels[suffix], strict=True)])
        assert agree >= 0.995, suffix


def test_backend_errors_are_one_line(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="unknown --backend 'tensorrt'"):
        open_backend(checkpoint, "tensorrt")
    onnx = export_checkpoint(checkpoint, tmp_path / "m.onnx", "onnx")
    with pytest.raises(ConfigError, match="cannot run in PyTorch"):
        open_backend(onnx, "torch")
    result = run_main("predict", str(onnx), str(tmp_path), "--out", str(tmp_path / "o"), "--backend", "nope")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_compile_failure_falls_back_to_eager(monkeypatch, capsys):
    def broken_compile(model):
        def run(x):
            raise RuntimeError("no C++ compiler found\nlong details")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = torch.nn.Conv2d(3, 2, 1)
    forward = compile_or_eager(model)
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(forward(x), model(x)) and torch.equal(forward(x), model(x))
    err = capsys.readouterr().err
    assert err == "warning: torch.compile failed (no C++ compiler found); running eager\n"


def test_each_backend_says_what_it_runs():
    assert {"torch", "onnxruntime", "openvino"} <= set(list_backends())
    assert BACKENDS.get("torch").suffixes() == () and BACKENDS.get("torch").export_format is None
    assert BACKENDS.get("onnxruntime").suffixes() == (".onnx",)
    assert BACKENDS.get("openvino").suffixes() == (".xml", ".onnx")  # OpenVINO runs ONNX files too


def test_files_and_conversions_go_where_their_backends_say(checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path / "cache"))
    # A checkpoint on a file backend: converted once to the backend's export format, in the cache.
    assert open_backend(checkpoint, "onnxruntime", "cpu").name == "onnxruntime"
    onnx = backends.converted_path(checkpoint, ".onnx")
    assert onnx.is_file() and open_backend(onnx, "auto", "cpu").name == "onnxruntime"
    assert open_backend(onnx, "openvino", "cpu", precision="fp32").name == "openvino"
    local = tmp_path / "best.safetensors"
    local.write_bytes(checkpoint.read_bytes())
    xml = export_checkpoint(local, fmt="openvino")  # the default name: the format's suffix
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["best.bin", "best.safetensors", "best.xml"]
    with pytest.raises(ConfigError, match="OpenVINO IR runs on --backend openvino; export ONNX for onnxruntime"):
        open_backend(xml, "onnxruntime")
    with pytest.raises(ConfigError, match="--backend onnxruntime needs an exported file"):
        open_backend(load_model(checkpoint), "onnxruntime")
