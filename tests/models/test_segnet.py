"""SegNet: VGG16-BN layout, max-unpooling with the encoder's indices, any input size, VGG16-BN weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

import pixelwise.models.segnet  # noqa: F401  (registers "segnet")
from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.models.registry import create_model, describe_model, list_models
from pixelwise.models.segnet import SegNet


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_registered_with_a_description():
    assert "segnet" in list_models()
    assert describe_model("segnet").startswith("SegNet")


def test_forward_backward_any_size():
    model = create_model("segnet", num_classes=5, base_filters=8)
    x = torch.randn(1, 3, 67, 93, requires_grad=True)
    logits = model(x)
    assert logits.shape == (1, 5, 67, 93)
    logits.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


def test_layout_matches_the_paper():
    model = SegNet(num_classes=11, base_filters=64)
    assert [c.out_channels for c in convs(model.encoder)] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    # Decoder block i mirrors encoder block i, deepest first; the last conv of a block narrows.
    assert [c.out_channels for c in convs(model.decoder)] == [512] * 5 + [256, 256, 256, 128, 128, 64, 64, 64]
    assert all(c.kernel_size == (3, 3) for c in convs(model.encoder) + convs(model.decoder))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 26
    assert model.head.in_channels == 64 and model.head.out_channels == 11
    assert sum(isinstance(m, nn.MaxUnpool2d) for m in model.modules()) == 5
    assert sum(isinstance(m, nn.MaxPool2d) and m.return_indices for m in model.modules()) == 1  # used 5 times
    assert not any(isinstance(m, nn.ConvTranspose2d | nn.Upsample) for m in model.modules())
    assert len(convs(model)) == 13 + 13 + 1


def test_unpool_puts_the_maxima_back_at_their_argmax():
    model = SegNet(base_filters=8)
    x = torch.tensor([[1.0, 2.0, 0.0, -1.0],
                      [0.5, 0.0, 7.0, 3.0],
                      [9.0, 0.0, 0.0, 0.0],
                      [0.0, 4.0, 5.0, 6.0]]).view(1, 1, 4, 4)
    pooled, indices = model.encoder.pool(x)
    assert pooled.flatten().tolist() == [2.0, 7.0, 9.0, 6.0]
    out = model.decoder[0].unpool(pooled, indices, x.shape[-2:])
    expected = torch.tensor([[0.0, 2.0, 0.0, 0.0],
                             [0.0, 0.0, 7.0, 0.0],
                             [9.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 6.0]]).view(1, 1, 4, 4)
    assert torch.equal(out, expected)
    # An odd size: the last row and column are never a maximum and unpool back to zero.
    odd = torch.arange(25.0).view(1, 1, 5, 5)
    pooled, indices = model.encoder.pool(odd)
    out = model.decoder[-1].unpool(pooled, indices, odd.shape[-2:])
    assert out.shape == odd.shape
    assert torch.equal(out[0, 0, 1:4:2, 1:4:2], odd[0, 0, 1:4:2, 1:4:2])
    assert int((out != 0).sum()) == 4


def test_forward_unpools_with_the_mirrored_encoder_indices():
    model = SegNet(num_classes=3, base_filters=8).eval()
    pools, unpools = [], []
    model.encoder.pool.register_forward_hook(lambda m, i, o: pools.append((i[0].shape[-2:], o[1].clone())))
    for block in model.decoder:
        block.unpool.register_forward_hook(
            lambda m, i, o: unpools.append((i[0].clone(), i[1].clone(), tuple(i[2]), o.clone())))
    with torch.no_grad():
        model(torch.randn(2, 3, 45, 70))
    assert len(pools) == len(unpools) == 5
    for (size, pool_indices), (x, indices, out_size, out) in zip(reversed(pools), unpools, strict=True):
        assert torch.equal(indices, pool_indices)
        assert out_size == tuple(size) and out.shape[-2:] == size
        flat, idx = out.flatten(2), indices.flatten(2)
        assert torch.equal(flat.gather(2, idx), x.flatten(2))  # every input value at its argmax
        at_argmax = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, idx, True)
        assert (flat[~at_argmax] == 0).all()  # and zeros everywhere else
        assert int(at_argmax.sum()) == x.numel()  # one distinct position per pooled value


@pytest.fixture(scope="module")
def vgg16_bn_state() -> dict[str, torch.Tensor]:
    import timm

    state = timm.create_model("vgg16_bn", pretrained=False).state_dict()
    # The 100M-parameter pre_logits MLP would only make the files slow to write; the classifier head
    # stays so the loader is shown to skip non-``features`` keys.
    return {k: v for k, v in state.items() if not k.startswith("pre_logits")}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_encoder_weights_from_local_vgg16_bn(tmp_path, vgg16_bn_state, suffix):
    path = tmp_path / f"vgg16_bn{suffix}"
    if suffix == ".safetensors":
        save_file(vgg16_bn_state, str(path))
    else:
        torch.save(vgg16_bn_state, path)
    model = create_model("segnet", num_classes=4, encoder_weights=str(path)).eval()
    layers = model.encoder.conv_bn_layers()
    assert torch.equal(layers[0][0].weight, vgg16_bn_state["features.0.weight"])
    assert torch.equal(layers[0][0].bias, vgg16_bn_state["features.0.bias"])
    assert torch.equal(layers[-1][0].weight, vgg16_bn_state["features.40.weight"])
    assert torch.equal(layers[-1][1].running_var, vgg16_bn_state["features.41.running_var"])
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4, 32, 32)
    if suffix == ".safetensors":
        gray = SegNet(in_channels=1, encoder_weights=str(path))
        first = gray.encoder.conv_bn_layers()[0][0].weight
        assert torch.allclose(first[:, 0], vgg16_bn_state["features.0.weight"].sum(1))


def test_encoder_weights_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="base_filters"):
        SegNet(base_filters=8, encoder_weights=str(tmp_path / "vgg16_bn.safetensors"))
    with pytest.raises(ConfigError, match="base_filters"):
        create_model("segnet", base_filters=32, encoder_weights="imagenet")
    with pytest.raises(CheckpointError, match="not found"):
        SegNet(encoder_weights=str(tmp_path / "nope.pth"))
    other = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(other))
    with pytest.raises(CheckpointError, match="does not fit SegNet"):
        SegNet(encoder_weights=str(other))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("timm.create_model", offline)  # the module pretrained.py imports when it needs it
    with pytest.raises(CheckpointError, match="ImageNet weights for encoder 'vgg16_bn' not found locally"):
        SegNet(encoder_weights="imagenet")


def test_checkpoint_rebuilds_the_model(tmp_path):
    from pixelwise import load_model
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint

    model = create_model("segnet", num_classes=3, base_filters=8).eval()
    classes = ClassSpec.from_lists(["a", "b", "c"], ignore_index=255)
    save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMeta.for_model(model, classes, input_size=(32, 48)))
    loaded = load_model(tmp_path / "m.safetensors")
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
