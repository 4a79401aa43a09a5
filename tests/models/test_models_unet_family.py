"""Attention U-Net's gates, the separable-conv residual U-Net's blocks and the U-Nets' Gaussian input noise."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.models.attention_unet import AttentionGate, AttentionUpBlock
from pixelwise.models.blocks import GaussianNoise, SeparableConv2d, UpBlock
from pixelwise.models.unet import ClassicEncoder


def small_attention_unet(**kwargs) -> nn.Module:
    return pixelwise.create_model("attention_unet", num_classes=3, base_filters=4, depth=3, **kwargs)


# ------------------------------------------------------------------------------------------ Attention U-Net
def test_attention_coefficients_are_in_unit_interval_at_the_skips_size():
    torch.manual_seed(0)
    model = small_attention_unet().eval()
    gates, alphas = [], []  # per gate, deepest first: ((gating signal, skip), gate output) and alpha
    hooks = [block.gate.register_forward_hook(lambda m, i, o: gates.append((i, o))) for block in model.decoder.blocks]
    hooks += [block.gate.psi.register_forward_hook(lambda m, i, o: alphas.append(o)) for block in model.decoder.blocks]
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 96))
    for hook in hooks:
        hook.remove()
    assert [tuple(skip.shape[-2:]) for (_, skip), _ in gates] == [(16, 24), (32, 48), (64, 96)]
    for ((g, skip), gated), alpha in zip(gates, alphas, strict=True):
        assert alpha.shape == (2, 1, *skip.shape[-2:])
        assert g.shape[-2:] == (skip.shape[-2] // 2, skip.shape[-1] // 2)  # gated by the coarser decoder feature
        assert alpha.min() >= 0 and alpha.max() <= 1 and alpha.std() > 0  # per-pixel, not one constant
        torch.testing.assert_close(gated, skip * alpha)  # the gate multiplies the skip by alpha

    # attention_maps gives the same maps, cropped to the image for sizes that need padding.
    maps = model.attention_maps(torch.randn(1, 3, 67, 93))
    assert [tuple(a.shape) for a in maps] == [(1, 1, 17, 24), (1, 1, 34, 47), (1, 1, 67, 93)]
    assert all(a.min() >= 0 and a.max() <= 1 for a in maps)
    assert not any(block.gate.psi._forward_hooks for block in model.decoder.blocks)  # its hooks are removed


def test_closed_gate_zeroes_the_skip_and_open_gate_passes_it():
    torch.manual_seed(0)
    block = AttentionUpBlock(8, 4, 6).eval()
    g, skip = torch.randn(2, 8, 5, 7), torch.randn(2, 4, 10, 14)
    with torch.no_grad():
        block.gate.psi.conv.bias.fill_(-1e4)  # sigmoid(-1e4) is exactly 0 in float32
        assert torch.equal(block.gate(g, skip), torch.zeros_like(skip))
        # The block then sees no skip at all: same output as a plain U-Net block given a zero skip.
        assert torch.equal(block(g, skip), UpBlock.forward(block, g, torch.zeros_like(skip)))
        block.gate.psi.conv.bias.fill_(1e4)  # fully open: the skip passes unchanged
        assert torch.equal(block.gate(g, skip), skip)
        assert torch.equal(block(g, skip), UpBlock.forward(block, g, skip))

    model = small_attention_unet().eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        before = model(x)
        for block in model.decoder.blocks:
            block.gate.psi.conv.bias.fill_(-1e4)
        outputs = []
        hooks = [block.gate.register_forward_hook(lambda m, i, o: outputs.append(o)) for block in model.decoder.blocks]
        after = model(x)
    for hook in hooks:
        hook.remove()
    assert len(outputs) == 3 and all(torch.count_nonzero(o) == 0 for o in outputs)
    assert not torch.allclose(before, after)


def test_attention_unet_is_the_classic_unet_plus_gates():
    torch.manual_seed(0)
    plain = pixelwise.create_model("unet", num_classes=2, base_filters=8, depth=4)
    model = pixelwise.create_model("attention_unet", num_classes=2, base_filters=8, depth=4)
    assert isinstance(model.encoder, ClassicEncoder)
    assert all(isinstance(block, AttentionUpBlock) for block in model.decoder.blocks)
    extra = set(model.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(model.state_dict())
    assert extra and all(".gate." in key for key in extra)
    # F_int is half the skip's channels; W_x and W_g project to it; psi to one channel.
    for block, skip in zip(model.decoder.blocks, [64, 32, 16, 8], strict=True):
        assert block.gate.wx.conv.in_channels == skip and block.gate.wx.conv.out_channels == skip // 2
        assert block.gate.wg.conv.in_channels == block.up.in_channels
        assert block.gate.psi.conv.out_channels == 1 and block.gate.psi.conv.bias is not None
    # Without batch norm the projections are bare convs and W_g carries the paper's bias b_g.
    gate = AttentionGate(8, 4, 2, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gate.modules())
    assert gate.wg.conv.bias is not None and gate.wx.conv.bias is None
    default = pixelwise.create_model("attention_unet")
    assert sum(p.numel() for p in default.parameters()) == 7_910_815


# ------------------------------------------------------------------------------------------ separable-conv U-Net
def test_sepres_unet_matches_the_keras_tutorial_layout():
    model = pixelwise.create_model("sepres_unet", num_classes=3)
    assert model.widths == [32, 64, 128, 256] and model.multiple == 16
    entry = model.entry[0]
    assert (entry.out_channels, entry.kernel_size, entry.stride) == (32, (3, 3), (2, 2))
    assert [b.residual.out_channels for b in model.down] == [64, 128, 256]
    for block in model.down:
        assert (block.residual.kernel_size, block.residual.stride) == ((1, 1), (2, 2))
        assert (block.pool.kernel_size, block.pool.stride) == (3, 2)
        assert sum(isinstance(m, SeparableConv2d) for m in block.convs) == 2
    for block, width in zip(model.up, [256, 128, 64, 32], strict=True):
        transposed = [m for m in block.convs if isinstance(m, nn.ConvTranspose2d)]
        assert [(t.out_channels, t.kernel_size, t.stride) for t in transposed] == [(width, (3, 3), (1, 1))] * 2
        assert isinstance(block.convs[-1], nn.Upsample) and block.convs[-1].scale_factor == 2
        conv, up = block.residual
        assert isinstance(up, nn.Upsample) and up.scale_factor == 2
        assert (conv.kernel_size, conv.stride, conv.out_channels) == ((1, 1), (1, 1), width)
    separable = [m for m in model.modules() if isinstance(m, SeparableConv2d)]
    assert len(separable) == 6
    for conv in separable:
        assert conv.depthwise.groups == conv.depthwise.in_channels == conv.depthwise.out_channels
        assert conv.depthwise.kernel_size == (3, 3) and conv.pointwise.kernel_size == (1, 1)
    assert (model.head.kernel_size, model.head.out_channels) == ((3, 3), 3)
    assert sum(p.numel() for p in model.parameters()) == 2_053_315  # Keras' 2,055,203 less 1,888 biases before BN


def test_sepres_blocks_add_their_residuals():
    torch.manual_seed(0)
    model = pixelwise.create_model("sepres_unet", num_classes=2, widths=[4, 8, 16]).eval()
    down, up = model.down[0], model.up[0]
    x = torch.randn(1, 4, 16, 24)
    with torch.no_grad():
        # With the main path's last batch norm silenced, only the residual is left.
        for block in (down, up):
            bn = [m for m in block.convs if isinstance(m, nn.BatchNorm2d)][-1]
            bn.weight.zero_()
            bn.bias.zero_()
        assert torch.equal(down(x), down.residual(x))
        y = torch.randn(1, 16, 4, 6)
        assert torch.equal(up(y), up.residual(y))
        # Conv-then-upsample is the tutorial's upsample-then-conv.
        conv = up.residual[0]
        torch.testing.assert_close(up.residual(y), conv(nn.functional.interpolate(y, scale_factor=2.0)))
    assert pixelwise.create_model("sepres_unet", base_filters=8, depth=2).widths == [8, 16, 32]
    with pytest.raises(ConfigError, match="widths"):
        pixelwise.create_model("sepres_unet", widths=[])


# ------------------------------------------------------------------------------------------ Gaussian input noise
def test_gaussian_noise_layer():
    x = torch.zeros(200_000)
    noisy = GaussianNoise(0.3).train()(x)
    assert abs(noisy.std().item() - 0.3) < 0.01 and abs(noisy.mean().item()) < 0.01
    assert GaussianNoise(0.3).eval()(x) is x
    assert GaussianNoise(0.0).train()(x) is x
    with pytest.raises(ConfigError, match="cannot be negative"):
        GaussianNoise(-0.1)


@pytest.mark.parametrize("name", ["unet", "attention_unet"])
def test_input_noise_only_in_training(name):
    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "base_filters": 4, "depth": 2, "dropout": False}  # dropout would also randomise
    clean = pixelwise.create_model(name, **kwargs)
    noisy = pixelwise.create_model(name, input_noise=0.5, **kwargs)
    assert set(noisy.state_dict()) == set(clean.state_dict())  # no new weights: old checkpoints still load
    noisy.load_state_dict(clean.state_dict())
    x = torch.randn(2, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(noisy.eval()(x), clean.eval()(x))
        noisy.train(), clean.train()
        assert not torch.allclose(noisy(x), clean(x))
        assert not torch.allclose(noisy(x), noisy(x))  # fresh noise every call
        assert torch.equal(clean(x), clean(x))  # std 0 adds nothing, not even zero-valued noise draws

# ONNX export of every registered model (these two included) is tested in test_export.py.


def test_full_res_skip_feeds_the_last_decoder_block_the_input_at_full_resolution(tmp_path):
    from pixelwise.data.synthetic import CLASSES
    from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=6, encoder="resnet18", full_res_skip=8).eval()
    plain = pixelwise.create_model("unet", num_classes=6, encoder="resnet18").eval()
    assert model.decoder.blocks[-1].conv[0].in_channels == plain.decoder.blocks[-1].conv[0].in_channels + 8
    seen = {}
    model.decoder.blocks[-1].register_forward_hook(lambda block, args, out: seen.update(skip=args[1]))
    x = torch.randn(1, 3, 61, 90)  # padded to 64x96 inside
    with torch.no_grad():
        before = model(x)
        assert before.shape == (1, 6, 61, 90)
        assert seen["skip"].shape == (1, 8, 64, 96)  # the stem's feature, at the padded input's full size
        model.full_res[3].weight.mul_(-1)  # the skip's weights change the logits: the block really uses it
        assert not torch.allclose(model(x), before)
    save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMeta.for_model(model, CLASSES))
    loaded, meta = load_checkpoint(tmp_path / "m.safetensors")
    assert meta.model_kwargs["full_res_skip"] == 8
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_full_res_skip_is_refused_where_it_cannot_apply():
    with pytest.raises(ConfigError, match="classic U-Net already has"):
        pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2, full_res_skip=8)
    with pytest.raises(ConfigError, match="number of channels"):
        pixelwise.create_model("unet", num_classes=3, encoder="resnet18", full_res_skip=-1)
