"""A loss added in one file outside pixelwise: the CLI trains with it as a plugin, alone or in a sum."""

from __future__ import annotations

import csv
import os

from pixelwise.models.checkpoint import read_meta
from pixelwise.testing import run_cli

# The whole plugin: one module, one class. It takes num_classes (build_loss passes it because the
# constructor has that parameter) but no class_weights, and reports what it got through a file.
TOY_LOSS = '''
"""A toy loss in one file."""
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelwise.core.constants import TARGET_IGNORE
from pixelwise.training.losses import register_loss


@register_loss("toy_l1")
class ToyL1(nn.Module):
    """Toy L1: mean |softmax - one-hot| over the valid pixels (a plugin's loss)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != TARGET_IGNORE
        onehot = F.one_hot(target.clamp(min=0), self.num_classes).permute(0, 3, 1, 2)
        distance = (logits.float().softmax(dim=1) - onehot).abs().sum(dim=1)
        Path(os.environ["TOY_LOSS_LOG"]).write_text(f"num_classes={self.num_classes}")
        return distance[valid].mean()
'''

TRAIN = ["--epochs", "1", "--img-size", "32x32", "--batch-size", "4", "--workers", "0", "--no-progress",
         "--precision", "fp32", "--model", "unet", "--model-option", "base_filters=4", "--model-option", "depth=2"]


def plugin_env(folder, log) -> dict[str, str]:
    path = os.pathsep.join(p for p in [str(folder), os.environ.get("PYTHONPATH", "")] if p)
    return {"PYTHONPATH": path, "PIXELWISE_PLUGINS": "toy_loss", "TOY_LOSS_LOG": str(log)}


def test_toy_loss_plugin_trains_alone_and_summed_with_weighted_ce(tiny_data, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_loss.py").write_text(TOY_LOSS)
    log = tmp_path / "toy_loss.log"
    env = plugin_env(plugins, log)

    # Without the plugin the name is unknown: one error line listing the built-in losses.
    without = run_cli("train", "--data", str(tiny_data), "--out", str(tmp_path / "none"), "--loss", "toy_l1",
                      *TRAIN, env={"PIXELWISE_PLUGINS": ""})
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert "unknown loss 'toy_l1'; choose one of ce, dice" in without.stderr, without.stderr
    assert not log.exists()

    # With it: summed with CE, which gets the class weights the toy loss does not take.
    run = tmp_path / "run"
    train = run_cli("train", "--data", str(tiny_data), "--out", str(run), "--loss", "ce+toy_l1",
                    "--class-weights", "inverse", *TRAIN, env=env)
    assert train.returncode == 0, train.stderr
    assert "class weights:" in train.stdout
    num_classes = len(read_meta(run / "best.safetensors").classes.classes)
    assert log.read_text() == f"num_classes={num_classes}"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["train_loss"]) > 0
