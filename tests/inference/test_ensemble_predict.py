"""Ensembles of checkpoints through the predictor, the backends and the CLI (predict, evaluate, export)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.data.formats import open_dataset
from pixelwise.data.presets import get_preset
from pixelwise.inference.backends import converted_path, open_backend
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, load_model, save_checkpoint
from pixelwise.models.ensemble import load_ensemble
from pixelwise.testing import run_main


@pytest.fixture(scope="module")
def checkpoints(tiny_data, tmp_path_factory):
    """Two small checkpoints of the tiny dataset's task: two architectures, two training sizes."""
    classes = open_dataset(tiny_data).classes
    folder = tmp_path_factory.mktemp("ensemble")
    paths = []
    for k, (name, options, size) in enumerate([("unet", {"base_filters": 4, "depth": 2}, (32, 48)),
                                               ("sepres_unet", {"widths": [4, 8, 16]}, (48, 64))]):
        torch.manual_seed(k)
        model = pixelwise.create_model(name, num_classes=classes.num_classes, **options)
        with torch.no_grad():  # confident logits, so labels compare runtimes rather than near-ties
            model.head.weight.mul_(20)
        paths.append(folder / f"member{k}.safetensors")
        save_checkpoint(paths[-1], model, CheckpointMeta.for_model(model, classes, input_size=size))
    return paths


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 37, 53, generator=torch.Generator().manual_seed(seed))


def test_the_torch_backend_runs_the_mean_of_the_members(checkpoints):
    ensemble = open_backend(checkpoints, "auto", "cpu", precision="fp32", num_images=10_000)
    assert ensemble.name == "torch"  # auto stays PyTorch for an ensemble, however long the job
    singles = [open_backend(path, "torch", "cpu", precision="fp32") for path in checkpoints]
    x = batch()
    assert torch.equal(ensemble(x), (singles[0](x) + singles[1](x)) / 2)
    assert ensemble.meta.input_size == (32, 48)  # the first member's: the predictor resizes to it


def test_the_predictor_labels_with_the_mean(checkpoints):
    image = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    model, _ = load_ensemble(checkpoints)  # the same ensemble in memory: one forward pass, no averaging of labels
    expected = Predictor(model, precision="fp32").predict(image)
    labels = Predictor(checkpoints, precision="fp32").predict(image)
    assert labels.shape == (45, 70) and np.array_equal(labels, expected)
    firsts = Predictor(checkpoints[0], precision="fp32").predict(image)
    assert not np.array_equal(labels, firsts)  # the second member changed something
    tiled = Predictor(checkpoints, precision="fp32", tile=(32, 32), tta_flip=True).predict(image)
    assert tiled.shape == (45, 70)


def test_an_exported_file_cannot_join_an_ensemble(checkpoints, tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read: refused by its suffix")
    with pytest.raises(ConfigError, match="cannot join an ensemble"):
        open_backend([checkpoints[0], onnx], "auto", "cpu")


def write_images(folder, count: int = 3) -> list:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in range(count):
        Image.fromarray(rng.integers(0, 256, (40 + 7 * k, 53, 3), dtype=np.uint8)).save(folder / f"img{k}.png")
    return sorted(folder.iterdir())


def test_cli_predicts_with_an_ensemble(checkpoints, tmp_path):
    images = write_images(tmp_path / "in")
    result = run_main("predict", *map(str, checkpoints), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                      "--precision", "fp32", "--workers", "0")
    assert result.returncode == 0, result.stderr
    assert "ensemble of 2 checkpoints" in result.stdout and "wrote 6 files for 3 images" in result.stdout
    predictor = Predictor(checkpoints, precision="fp32")
    for image in images:
        labels = np.array(Image.open(tmp_path / "out" / f"{image.stem}_labels.png"))
        assert np.array_equal(labels, predictor.predict(image))


def test_cli_predict_needs_images_after_the_checkpoints(checkpoints, tmp_path):
    result = run_main("predict", *map(str, checkpoints), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "all model files" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cli_evaluates_an_ensemble(checkpoints, tiny_data):
    result = run_main("evaluate", *map(str, checkpoints), "--data", str(tiny_data), "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    written = checkpoints[0].with_name("eval_val_ensemble.json")  # not eval_val.json: that is the first's own
    metrics = json.loads(written.read_text())
    assert metrics["images"] == 4 and 0 <= metrics["miou"] <= 1
    first_alone = pixelwise.evaluate(checkpoints[0], tiny_data, precision="fp32")
    assert metrics["per_class"] != first_alone["per_class"]


def test_cli_refuses_an_ensemble_of_two_tasks(checkpoints, tiny_data, tmp_path):
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    other = tmp_path / "binary.safetensors"
    save_checkpoint(other, model, CheckpointMeta.for_model(model, get_preset("binary")))
    images = str(tiny_data / "images" / "val")
    for command in (["evaluate", "--data", str(tiny_data)], ["predict", images, "--out", str(tmp_path / "out")]):
        result = run_main(command[0], str(checkpoints[0]), str(other), *command[1:])
        assert result.returncode == 2, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "disagree on the classes" in lines[0]
        assert str(other) in lines[0] and str(checkpoints[0]) in lines[0]


@pytest.fixture(scope="module")
def exported(checkpoints):
    pytest.importorskip("onnxscript", reason="pip install 'pixelwise[onnx]'")
    pytest.importorskip("onnxruntime", reason="pip install 'pixelwise[onnx]'")
    result = run_main("export", *map(str, checkpoints))
    assert result.returncode == 0, result.stderr
    return result


def test_cli_exports_one_graph_that_averages(checkpoints, exported):
    from pixelwise.inference.compare import compare_with_runtime
    from pixelwise.inference.export import read_model_meta

    path = checkpoints[0].with_name("member0_ensemble.onnx")  # the default name: member0.onnx stays the first's
    assert f"wrote {path}" in exported.stdout and "the mean of 2 checkpoints" in exported.stdout
    difference = float(exported.stdout.split("max abs difference ")[1].split()[0])
    assert difference < 1e-4, exported.stdout
    model, _ = load_ensemble(checkpoints)
    for shape in [(1, 3, 67, 93), (3, 3, 40, 52), (1, 3, 130, 33)]:  # dynamic batch, height and width
        assert compare_with_runtime(model, path, shape) < 1e-4, shape
    assert compare_with_runtime(load_model(checkpoints[0]), path, (1, 3, 40, 52)) > 1e-3  # not the first alone
    assert read_model_meta(path).extra["ensemble"] == [str(p) for p in checkpoints]


def test_the_exported_ensemble_predicts_like_pytorch(checkpoints, exported, tmp_path):
    path = checkpoints[0].with_name("member0_ensemble.onnx")
    assert open_backend(path, "auto", "cpu").name == "onnxruntime"  # an exported ensemble runs on its runtime
    images = write_images(tmp_path / "in")
    result = run_main("predict", str(path), str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "0")
    assert result.returncode == 0, result.stderr
    assert "ensemble of 2 checkpoints" in result.stdout  # its metadata lists the members
    predictor = Predictor(checkpoints, precision="fp32")
    for image in images:
        labels = np.array(Image.open(tmp_path / "out" / f"{image.stem}_labels.png"))
        assert (labels == predictor.predict(image)).mean() >= 0.995


def test_a_named_runtime_runs_an_ensemble_after_one_conversion(checkpoints, exported, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELWISE_CACHE", str(tmp_path))
    converted = open_backend(checkpoints, "onnxruntime", "cpu")
    reference = open_backend(checkpoints, "torch", "cpu", precision="fp32")
    x = batch(1)
    assert float((converted(x) - reference(x)).abs().max()) < 1e-4
    cached = converted_path(checkpoints, ".onnx")
    assert list(tmp_path.rglob("*.onnx")) == [cached]  # cached under the pair's key ...
    stamp = cached.stat().st_mtime_ns
    assert open_backend(checkpoints, "onnxruntime", "cpu").meta.extra["ensemble"] == [str(p) for p in checkpoints]
    assert cached.stat().st_mtime_ns == stamp  # ... and reused, not converted again
    # Neither the first member alone nor the pair in another order (another first, another meta) shares the key.
    assert cached not in (converted_path(checkpoints[0], ".onnx"), converted_path(checkpoints[::-1], ".onnx"))
