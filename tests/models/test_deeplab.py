"""DeepLabV3+: any input size with batch 1, ASPP rates per output stride, encoders, weights, save/load."""

from __future__ import annotations

import pytest
import timm
import torch

import pixelwise.models.deeplab  # noqa: F401  (registers "deeplabv3plus")
from pixelwise.core.errors import ConfigError
from pixelwise.models.deeplab import DeepLabV3Plus
from pixelwise.models.registry import create_model

SMALL = {"aspp_channels": 32, "decoder_channels": 32, "low_level_channels": 16}


def atrous_dilations(model: DeepLabV3Plus) -> list[int]:
    """The dilations of the ASPP's 3x3 convs, in branch order."""
    convs = [m for m in model.aspp.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    return [conv.dilation[0] for conv in convs]


def test_forward_backward_batch_one_any_size():
    model = DeepLabV3Plus(num_classes=4, encoder="resnet18", **SMALL).train()
    x = torch.randn(1, 3, 67, 93, requires_grad=True)
    logits = model(x)  # batch 1 in training mode: the image-pooling branch has no batch norm
    assert logits.shape == (1, 4, 67, 93)
    logits.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("output_stride,rates", [(16, [6, 12, 18]), (8, [12, 24, 36])])
def test_aspp_rates_and_deepest_stride_follow_output_stride(output_stride, rates):
    model = DeepLabV3Plus(encoder="resnet18", output_stride=output_stride, **SMALL).eval()
    assert atrous_dilations(model) == rates
    assert model.encoder.reductions[-1] == output_stride
    with torch.no_grad():
        features = model.encoder(torch.zeros(1, 3, 64, 64))
    assert features[-1].shape[-2:] == (64 // output_stride, 64 // output_stride)
    assert features[model.low_level_index].shape[-2:] == (16, 16)  # the stride-4 low-level feature


def test_mobile_encoder():
    model = DeepLabV3Plus(num_classes=3, encoder="mobilenetv3_small_100", **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 50, 70)).shape == (1, 3, 50, 70)


@pytest.mark.parametrize("output_stride", [32, 4])
def test_unsupported_output_stride_is_a_config_error(output_stride):
    with pytest.raises(ConfigError, match="output_stride must be 8 or 16"):
        DeepLabV3Plus(encoder="resnet18", output_stride=output_stride)


def test_encoder_without_dilation_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot run at output stride"):
        DeepLabV3Plus(encoder="vit_tiny_patch16_224", **SMALL)


def test_local_encoder_weights_load_exactly(tmp_path):
    classifier = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(classifier.state_dict(), path)
    model = DeepLabV3Plus(encoder="resnet18", encoder_weights=str(path), **SMALL)
    assert torch.equal(model.encoder.model.conv1.weight, classifier.conv1.weight)
    assert torch.equal(model.encoder.model.layer4[1].conv2.weight, classifier.layer4[1].conv2.weight)


def test_save_load_reproduces_outputs(tmp_path):
    import pixelwise
    from pixelwise.data.presets import get_preset
    from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint

    model = create_model("deeplabv3plus", num_classes=2, encoder="resnet18", output_stride=8, **SMALL).eval()
    save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMeta.for_model(model, get_preset("binary")))
    loaded = pixelwise.load_model(tmp_path / "m.safetensors")
    assert isinstance(loaded, DeepLabV3Plus) and loaded.output_stride == 8
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
