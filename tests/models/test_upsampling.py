"""Decoder upsampling options: every mode trains at any size, ICNR starts nearest-neighbour, default unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.models.blocks import icnr_, make_upsampler

MODES = [
    {"upsample": "transpose"},
    {"upsample": "bilinear"},
    {"upsample": "pixelshuffle"},
    {"upsample": "pixelshuffle", "blur": True},
    {"upsample": "pixelshuffle", "encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8]},
]


@pytest.mark.parametrize("kwargs", MODES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_every_mode_forward_backward_any_size(kwargs):
    torch.manual_seed(0)
    if "encoder" not in kwargs:
        kwargs = {"base_filters": 4, "depth": 3, **kwargs}
    model = pixelwise.create_model("unet", num_classes=3, **kwargs)
    x = torch.randn(1, 3, 67, 93, requires_grad=True)
    logits = model(x)
    assert logits.shape == (1, 3, 67, 93)
    logits.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _blocks_are_constant(y: torch.Tensor) -> bool:
    """True when every 2x2 block of ``y`` equals its top-left pixel (a nearest-neighbour upsampling)."""
    top_left = y[..., ::2, ::2].repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return torch.allclose(y, top_left, rtol=0, atol=1e-6)


def test_icnr_pixelshuffle_starts_as_nearest_neighbour():
    torch.manual_seed(0)
    up = make_upsampler(8, 5, "pixelshuffle")
    x = torch.randn(2, 8, 6, 7)
    with torch.no_grad():
        y = up(x)
    assert y.shape == (2, 5, 12, 14)
    assert _blocks_are_constant(y)
    assert y.abs().max() > 0.1  # not trivially constant because it is zero
    # Exactly nearest-neighbour upsampling of the conv that the first channel of each group computes.
    sub = nn.functional.conv2d(x, up.conv.weight[::4], up.conv.bias[::4])
    assert torch.allclose(y, nn.functional.interpolate(sub, scale_factor=2, mode="nearest"), atol=1e-6)

    # The same check fails for a plainly (kaiming) initialised sub-pixel conv: it starts as a checkerboard.
    plain = nn.Conv2d(8, 20, 1)
    nn.init.kaiming_normal_(plain.weight)
    with torch.no_grad():
        assert not _blocks_are_constant(nn.PixelShuffle(2)(plain(x)))


def test_icnr_repeats_each_sub_kernel_per_shuffle_group():
    w = icnr_(torch.empty(12, 3, 3, 3), scale=2)
    groups = w.view(3, 4, 3, 3, 3)
    assert torch.equal(groups, groups[:, :1].expand_as(groups))
    with pytest.raises(ValueError, match="divide"):
        icnr_(torch.empty(6, 3, 1, 1), scale=2)


def test_blur_keeps_the_size():
    up = make_upsampler(4, 3, "pixelshuffle", blur=True)
    x = torch.randn(1, 3, 9, 11)
    assert up.blur(x).shape == x.shape
    assert up(torch.randn(1, 4, 9, 11)).shape == (1, 3, 18, 22)


def test_default_transpose_state_dict_is_unchanged():
    model = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=3)
    up = model.decoder.blocks[0].up
    assert isinstance(up, nn.ConvTranspose2d) and up.kernel_size == (2, 2) and up.stride == (2, 2)
    keys = set(model.state_dict())
    for key in ["decoder.blocks.0.up.weight", "decoder.blocks.0.up.bias", "decoder.blocks.2.up.weight",
                "decoder.blocks.0.conv.0.weight", "decoder.blocks.2.conv.4.running_var",
                "encoder.bottleneck.3.weight", "head.weight", "head.bias"]:
        assert key in keys
    # 92 keys, as counted on the model before the upsample option existed.
    assert len(keys) == 92 and not any("shuffle" in k or "blur" in k for k in keys)
    assert model.decoder.blocks[0].up.weight.shape == (32, 16, 2, 2)
    # A checkpoint of an older default model (same keys) loads into the new one strictly.
    model.load_state_dict(pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=3,
                                                 upsample="transpose").state_dict())


def test_bad_upsample_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="unknown upsample 'nearest-ish'; choose one of transpose, bilinear, "
                                          "pixelshuffle"):
        pixelwise.create_model("unet", upsample="nearest-ish")
    with pytest.raises(ConfigError, match="blur applies only to upsample='pixelshuffle'"):
        pixelwise.create_model("unet", base_filters=4, depth=2, blur=True)
