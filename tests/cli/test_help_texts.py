"""The help texts list what the registries hold, a plugin's entries included, and the plugin's entries are
accepted by the commands.

The checks run in a fresh process with the plugin loaded: this process's registries may hold entries
that other tests registered after the help texts were built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

# One entry in every registry a help text lists.
PLUGIN = '''
"""A plugin of test entries: a preset, a format, a model, a loss and a backend."""
import torch.nn as nn

from pixelwise.data.classes import ClassSpec, register_preset
from pixelwise.data.formats.base import register_format
from pixelwise.inference.backends import Backend, register_backend
from pixelwise.models.base import SegmentationModel
from pixelwise.models.registry import register_model
from pixelwise.training.losses import register_loss

register_preset("plugin-classes", ClassSpec.from_lists(["background", "thing"]))


@register_format("plugin-layout", detect=lambda root: False, description="a layout no folder has")
def open_plugin_layout(root, classes, options):
    raise NotImplementedError


@register_model("plugin_net")
class PluginNet(SegmentationModel):
    """A 1x1 convolution (a plugin's model)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, num_classes, 1)

    def forward_padded(self, x):
        return self.head(x)


@register_loss("plugin_loss")
class PluginLoss(nn.Module):
    """Zero (a plugin's loss)."""

    def forward(self, logits, target):
        return logits.sum() * 0


@register_backend("plugin_backend")
class PluginBackend(Backend):
    """Logits of zeros (a plugin's backend)."""

    def __call__(self, images):
        return images[:, :1] * 0
'''

# In a fresh process with PIXELWISE_PLUGINS set: the registries' names, and what the CLI says, as JSON.
REPORT = """
import json, typing
from pixelwise.core.device import PRECISIONS
from pixelwise.core.plugins import load_plugins
from pixelwise.data.formats import list_formats
from pixelwise.data.presets import list_presets
from pixelwise.inference.backends import list_backends
from pixelwise.inference.export import list_export_formats
from pixelwise.models import list_models
from pixelwise.testing import run_main
from pixelwise.training.config import TrainConfig
from pixelwise.training.losses import list_losses

load_plugins()  # after importing the CLI (pixelwise.testing): its help texts must not depend on this call
literal = lambda field: list(typing.get_args(TrainConfig.model_fields[field].annotation))
names = {"format": list_formats(), "classes": list_presets(), "model": list_models(), "loss": list_losses(),
         "precision": list(PRECISIONS), "optimizer": literal("optimizer"), "schedule": literal("schedule"),
         "backend": list_backends(), "export": list_export_formats()}
runs = {" ".join(args): run_main(*args) for args in
        [("train", "--help"), ("predict", "--help"), ("export", "--help"), ("serve", "--help"),
         ("models", "show", "plugin_net")]}
print(json.dumps({"names": names, "runs": {k: [r.returncode, r.stdout, r.stderr] for k, r in runs.items()}}))
"""


def option_help(help_text: str, option: str) -> set[str]:
    """The words of one option's help text (click wraps lines, breaking names at their hyphens)."""
    text = " ".join(re.sub(r"-\n\s+", "-", help_text).split())
    start = text.index(f"{option} <str>") + len(option)
    end = text.find(" --", start)
    return {word.rstrip(".") for word in re.split(r"[\s,;()]+", text[start:end if end > 0 else None])}


def test_help_lists_the_registries_and_a_plugins_entries(tmp_path):
    (tmp_path / "test_entries.py").write_text(PLUGIN)
    path = os.pathsep.join(p for p in [str(tmp_path), os.environ.get("PYTHONPATH", "")] if p)
    env = {**os.environ, "PYTHONPATH": path, "PIXELWISE_PLUGINS": "test_entries"}
    result = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names, runs = report["names"], report["runs"]
    for option, entry in [("format", "plugin-layout"), ("classes", "plugin-classes"), ("model", "plugin_net"),
                          ("loss", "plugin_loss"), ("backend", "plugin_backend")]:
        assert entry in names[option], option  # the plugin was loaded

    for command, options in [("train --help", ["format", "classes", "model", "loss", "precision", "optimizer",
                                               "schedule"]),
                             ("predict --help", ["backend", "precision"]), ("serve --help", ["backend", "precision"]),
                             ("export --help", ["export"])]:
        code, stdout, stderr = runs[command]
        assert code == 0, stderr
        for option in options:
            flag = "--format" if option == "export" else f"--{option}"
            missing = set(names[option]) - option_help(stdout, flag)
            assert not missing, (command, option, missing)

    # Accepted, too: the plugin's model is built and summarised.
    code, stdout, stderr = runs["models show plugin_net"]
    assert code == 0 and "plugin_net(" in stdout, stderr
