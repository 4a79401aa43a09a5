"""A backend added in one file outside pixelwise: the CLI predicts with it as a plugin."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.data.presets import get_preset
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import run_cli, run_main

# The whole plugin: one module, one class, wrapping the PyTorch backend. It runs checkpoints directly
# (no export_format), always in fp32 whatever --precision says, and logs the size of each batch it runs.
TOY_BACKEND = '''
"""A toy backend in one file."""
import os

import torch

from pixelwise.inference.backends import register_backend
from pixelwise.inference.backends.pytorch import TorchBackend


@register_backend("toy_torch")
class ToyTorch(TorchBackend):
    """PyTorch, always fp32, logging its batch sizes (a plugin's backend)."""

    @classmethod
    def from_model(cls, model, meta, device, precision, compile=False):
        return cls(model, meta, device, "fp32", compile)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with open(os.environ["TOY_BACKEND_LOG"], "a") as log:
            log.write(f"{len(images)}\\n")
        return super().__call__(images)
'''


def plugin_env(folder, log) -> dict[str, str]:
    path = os.pathsep.join(p for p in [str(folder), os.environ.get("PYTHONPATH", "")] if p)
    return {"PYTHONPATH": path, "PIXELWISE_PLUGINS": "toy_backend", "TOY_BACKEND_LOG": str(log)}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("binary"), input_size=(32, 32)))
    return path


def test_toy_backend_plugin_predicts_like_torch(tiny_data, checkpoint, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_backend.py").write_text(TOY_BACKEND)
    log = tmp_path / "batches.log"
    images = tiny_data / "images" / "val"  # 4 images
    common = ["--batch-size", "2", "--workers", "0", "--device", "cpu"]

    without = run_cli("predict", str(checkpoint), str(images), "--out", str(tmp_path / "none"),
                      "--backend", "toy_torch", *common, env={"PIXELWISE_PLUGINS": ""})
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert "unknown --backend 'toy_torch'; choose one of onnxruntime, openvino, torch" in without.stderr

    toy = run_cli("predict", str(checkpoint), str(images), "--out", str(tmp_path / "toy"), "--backend", "toy_torch",
                  "--precision", "bf16", *common, env=plugin_env(plugins, log))
    assert toy.returncode == 0, toy.stderr
    assert "backend: toy_torch (fp32)" in toy.stdout  # its own rule beat --precision bf16
    assert log.read_text().split() == ["2", "2"]  # 4 images in batches of 2
    reference = run_main("predict", str(checkpoint), str(images), "--out", str(tmp_path / "torch"),
                         "--backend", "torch", "--precision", "fp32", *common)
    assert reference.returncode == 0, reference.stderr
    for image in sorted(images.iterdir()):
        name = f"{image.stem}_labels.png"
        assert np.array_equal(np.array(Image.open(tmp_path / "toy" / name)),
                              np.array(Image.open(tmp_path / "torch" / name)))
