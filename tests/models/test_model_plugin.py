"""A model added in one file outside pixelwise: the CLI trains, evaluates and predicts with it as a plugin."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from pixelwise.models.checkpoint import read_meta
from pixelwise.testing import run_cli

# The whole plugin: one module, one class. Its first conv has stride 2, so its logits come out at half the
# padded size and SegmentationModel's forward has to pad, resize and crop them for the 48x64 images.
TOY_MODEL = '''
"""A toy model in one file."""
import torch
import torch.nn as nn

from pixelwise.models import SegmentationModel, register_model


@register_model("toy_conv")
class ToyConv(SegmentationModel):
    """Toy conv net: a stride-2 3x3 conv, ReLU and a 1x1 head (a plugin's model)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, num_classes, 1)
        self.multiple = 2

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
'''

FAST = ["--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32"]


def plugin_env(folder) -> dict[str, str]:
    path = os.pathsep.join(p for p in [str(folder), os.environ.get("PYTHONPATH", "")] if p)
    return {"PYTHONPATH": path, "PIXELWISE_PLUGINS": "toy_model"}


def test_toy_model_plugin_trains_evaluates_and_predicts(tiny_data, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_model.py").write_text(TOY_MODEL)
    env = plugin_env(plugins)

    listed = run_cli("models", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "toy_conv" in listed.stdout and "Toy conv net: a stride-2 3x3 conv" in listed.stdout

    run = tmp_path / "RUN"
    train = run_cli("train", "--data", str(tiny_data), "--model", "toy_conv", "--epochs", "1", "--img-size", "32x32",
                    "--model-option", "width=6", "--out", str(run), *FAST, env=env)
    assert train.returncode == 0, train.stderr
    best = run / "best.safetensors"
    meta = read_meta(best)
    # The checkpoint names the plugin's model and the option it was trained with, so it rebuilds it alone.
    assert meta.model == "toy_conv" and meta.model_kwargs["width"] == 6

    metrics = tmp_path / "metrics.json"
    evaluate = run_cli("evaluate", str(best), "--data", str(tiny_data), "--split", "val", "--json", str(metrics),
                       env=env)
    assert evaluate.returncode == 0, evaluate.stderr
    assert 0 <= json.loads(metrics.read_text())["miou"] <= 1

    image = sorted((tiny_data / "images" / "val").iterdir())[0]
    predict = run_cli("predict", str(best), str(image), "--out", str(tmp_path / "pred"), env=env)
    assert predict.returncode == 0, predict.stderr
    labels = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_labels.png"))
    assert labels.shape == (48, 64)

    # Without the plugin nothing can rebuild the model: one error line naming it, no traceback.
    without = run_cli("evaluate", str(best), "--data", str(tiny_data), env={"PIXELWISE_PLUGINS": ""})
    assert without.returncode != 0 and "unknown model 'toy_conv'" in without.stderr
    assert "Traceback" not in without.stderr
