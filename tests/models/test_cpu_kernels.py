"""Depthwise convolutions in fp32 under CPU bf16 autocast: same weights, same names, fp32 results."""

import copy

import pytest
import torch

from pixelwise.models import create_model
from pixelwise.models.cpu_kernels import Fp32DepthwiseConv2d, depthwise_in_fp32
from pixelwise.training.config import TrainConfig
from pixelwise.training.model_setup import build_model


def small_lite0() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", num_classes=3, encoder="efficientnet_lite0").eval()


def test_switch_keeps_weights_names_and_fp32_outputs():
    model = small_lite0()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    keys = list(model.state_dict())
    switched = depthwise_in_fp32(model)
    assert switched > 5  # EfficientNet-Lite0's inverted residual blocks each have one
    assert list(model.state_dict()) == keys  # a checkpoint does not know
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5)  # outside autocast: the same arithmetic
    conv = next(m for m in model.modules() if isinstance(m, Fp32DepthwiseConv2d))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, conv.in_channels, 8, 8, dtype=torch.bfloat16)).dtype == torch.float32
        out = model(x)
    assert out.shape == before.shape and torch.isfinite(out).all()


def test_switched_model_trains_and_copies():
    model = small_lite0().train()
    depthwise_in_fp32(model)
    ema = copy.deepcopy(model)  # the EMA copy keeps the switched class
    assert any(isinstance(m, Fp32DepthwiseConv2d) for m in ema.modules())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(torch.randn(2, 3, 64, 64)).float().mean()
    loss.backward()
    conv = next(m for m in model.modules() if isinstance(m, Fp32DepthwiseConv2d))
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_build_model_switches_only_for_cpu_bf16(cpu_bf16):
    cfg = TrainConfig(model="unet", encoder="efficientnet_lite0")
    model = build_model(cfg, num_classes=3, channels_last=False, cpu_bf16=cpu_bf16)
    assert any(isinstance(m, Fp32DepthwiseConv2d) for m in model.modules()) == cpu_bf16


def test_dense_and_plain_grouped_convs_stay():
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3), torch.nn.Conv2d(8, 8, 3, groups=2))
    assert depthwise_in_fp32(net) == 0
