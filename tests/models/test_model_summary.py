"""`pixelwise models show`: parameter totals, FLOPs checked by hand, the layer table, and the CLI contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import pixelwise
from pixelwise.models.summary import summarize_model
from pixelwise.testing import SMALL_MODEL_OPTIONS as SMALL
from pixelwise.testing import run_main

SIZE = (48, 64)


def hand_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-adds of every Conv2d / ConvTranspose2d / Linear call, from the textbook formulas."""
    macs = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):  # each output value: (in / groups) * kh * kw products
            macs += output.numel() * module.in_channels // module.groups * module.weight[0, 0].numel()
        elif isinstance(module, nn.ConvTranspose2d):  # each input value scatters into (out / groups) * kh * kw
            macs += inputs[0].numel() * module.out_channels // module.groups * module.weight[0, 0].numel()
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    for handle in handles:
        handle.remove()
    return macs


@pytest.mark.parametrize("name", pixelwise.list_models())
def test_totals_of_every_registered_model(name):
    # Small settings keep this fast; a model test_models has not listed yet runs with its defaults.
    model = pixelwise.create_model(name, num_classes=3, **SMALL.get(name, {}))
    params = list(model.parameters())
    summary = summarize_model(model, SIZE)
    assert summary.total_params == sum(p.numel() for p in params)
    assert summary.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    assert summary.param_bytes == sum(p.numel() * p.element_size() for p in params)
    assert model.training  # the summary puts the model back in the mode it found it in
    # The table counts every parameter exactly once, however deep it is cut.
    assert sum(row.params or 0 for row in summary.rows) == summary.total_params
    shallow = summarize_model(model, SIZE, depth=1)
    assert sum(row.params or 0 for row in shallow.rows) == summary.total_params
    assert max(row.depth for row in shallow.rows) == 1
    # FlopCounterMode agrees with the per-layer formulas: no layer escapes it, none is counted twice.
    assert summary.flops == 2 * hand_macs(model, SIZE) > 0


@pytest.mark.parametrize("layer,macs", [
    (nn.Conv2d(3, 8, 3, padding=1), 8 * 3 * 9 * 100),
    (nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8)), 8 * 3 * 100 + 8 * 9 * 100),
    (nn.ConvTranspose2d(3, 4, 2, stride=2), 3 * 4 * 4 * 100),  # 10x10 -> 20x20: 400 outputs x 4 x 3
    (nn.Linear(10, 5), 3 * 10 * 10 * 5),  # applied to the last dim: 30 rows of 10 -> 5
])
def test_flops_by_hand(layer, macs):
    summary = summarize_model(layer, (10, 10))
    assert summary.flops == 2 * macs
    assert "GFLOPs (2 x multiply-adds" in summary.format() and "at 1x3x10x10" in summary.format()


def test_shared_and_tied_weights_are_counted_once():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.tied = nn.Conv2d(3, 3, 3, padding=1)
            self.tied.weight = self.conv.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.tied(self.conv(self.conv(x)))

    model = Twice()
    summary = summarize_model(model, (8, 8))
    assert summary.total_params == 3 * 3 * 9 + 3 + 3
    assert [row.params for row in summary.rows] == [0, 84, None, 3]
    assert "(recursive)" in summary.format_table()
    assert summary.flops == 3 * 2 * (3 * 3 * 9 * 64)  # three conv calls all the same


def test_table_rows_in_call_order_with_depth():
    model = pixelwise.create_model("unet", num_classes=3, **SMALL["unet"])
    summary = summarize_model(model, SIZE, depth=1)
    lines = summary.format_table().splitlines()
    assert lines[0].split() == ["Layer", "(type:depth-idx)", "Output", "Shape", "Param", "#"]
    labels = [line.split("  ")[0] for line in lines[2:]]
    assert labels == ["UNet", "├─GaussianNoise: 1-1", "├─ClassicEncoder: 1-2", "├─UNetDecoder: 1-3", "└─Conv2d: 1-4"]
    assert "[1, 3, 48, 64]" in lines[2]  # the model's output shape on its row
    deep = summarize_model(model, SIZE).format_table()
    assert "│   ├─DoubleConv: 2-1" in deep and "│   │   ├─Conv2d: 3-1" in deep


def test_cli_models_show():
    out = run_main("models", "show", "unet", "--size", "64x96", "--depth", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("unet() at 1x3x64x96")
    for text in ["Total params: 7,778,626", "Trainable params", "GFLOPs (2 x multiply-adds", "Params size (MB)",
                 "├─ClassicEncoder: 1-2", "[1, 2, 64, 96]"]:
        assert text in out.stdout, text
    assert "│   │   " not in out.stdout  # --depth 2 stops before the convs

    small = run_main("models", "show", "segnet", "--num-classes", "5", "--size", "32x32", "--depth", "0")
    assert small.returncode == 0 and "segnet(num_classes=5) at 1x3x32x32" in small.stdout
    assert "├─" not in small.stdout


@pytest.mark.parametrize("args,fragment", [
    (["nope"], "unknown model 'nope'"),
    (["unet", "--encoder", "resnet-9000"], "unknown encoder 'resnet-9000'"),
    (["segnet", "--encoder", "resnet18"], "no option 'encoder'"),
    (["unet", "--size", "big"], "--size"),
    (["unet", "--size", "0x5"], "at least 1 pixel"),
])
def test_cli_models_show_bad_input(args, fragment):
    out = run_main("models", "show", *args)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert fragment in lines[0] and "Traceback" not in out.stderr


def test_cli_models_still_lists_every_model():
    out = run_main("models")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines() if line.strip()] == pixelwise.list_models()
    assert run_main("models", "--help").returncode == 0
