"""Every registered model: any input size, backward, exact save/load; encoders and their weights."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import pixelwise
from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.models.encoders import TimmEncoder
from pixelwise.testing import MODEL_VARIANTS as VARIANTS
from pixelwise.testing import SMALL_MODEL_OPTIONS as SMALL


def test_every_registered_model_has_small_settings():
    assert set(pixelwise.list_models()) == set(SMALL)


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_forward_backward_any_size(name, kwargs):
    model = pixelwise.create_model(name, num_classes=5, **kwargs)
    x = torch.randn(2, 3, 67, 93, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 5, 67, 93)
    logits.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_save_load_reproduces_outputs(name, kwargs, tmp_path):
    from pixelwise.data.classes import ClassSpec
    from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint

    model = pixelwise.create_model(name, num_classes=3, **kwargs).eval()
    classes = ClassSpec.from_lists(["a", "b", "c"], ignore_index=255)
    save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMeta.for_model(model, classes, input_size=(32, 48)))
    loaded = pixelwise.load_model(tmp_path / "m.safetensors")
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.meta.classes == classes and loaded.meta.input_size == (32, 48)
    assert loaded.meta.version == pixelwise.__version__


def test_classic_unet_matches_the_paper_layout():
    model = pixelwise.create_model("unet", num_classes=2, base_filters=64)
    widths = [block[0].out_channels for block in model.encoder.blocks]
    assert widths == [64, 128, 256, 512, 1024]
    assert model.encoder.bottom_channels == 2048  # 32f bottleneck
    ups = [block.up for block in model.decoder.blocks]
    assert all(isinstance(u, torch.nn.ConvTranspose2d) and u.kernel_size == (2, 2) for u in ups)
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert drops == [0.1, 0.3]
    no_bn = pixelwise.create_model("unet", num_classes=2, batch_norm=False, activation="elu", dropout=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.Dropout2d) for m in no_bn.modules())
    assert any(isinstance(m, torch.nn.ELU) for m in no_bn.modules())


def test_unknown_model_and_option_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'unetx'"):
        pixelwise.create_model("unetx")
    with pytest.raises(ConfigError, match="no option 'filters'"):
        pixelwise.create_model("unet", filters=3)
    with pytest.raises(ConfigError, match="unknown encoder 'resnet-9000'"):
        pixelwise.create_model("unet", encoder="resnet-9000")


def test_none_kwargs_keep_model_defaults():
    model = pixelwise.create_model("unet", num_classes=2, base_filters=None, depth=2)
    assert model.encoder.channels == [16, 32]
    assert "base_filters" not in model.init_kwargs


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_encoder_weights_from_local_file(tmp_path, suffix):
    import timm

    classifier = timm.create_model("resnet18", num_classes=10)  # a full classifier: its fc keys are skipped
    state = classifier.state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    encoder = TimmEncoder("resnet18", weights=str(path))
    assert torch.equal(encoder.model.conv1.weight, state["conv1.weight"])
    gray = TimmEncoder("resnet18", in_channels=1, weights=str(path))
    assert torch.allclose(gray.model.conv1.weight[:, 0], state["conv1.weight"].sum(1))


def test_encoder_weights_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        TimmEncoder("resnet18", weights=str(tmp_path / "nope.pth"))
    bad = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(CheckpointError, match="does not fit this encoder"):
        TimmEncoder("resnet18", weights=str(bad))
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        TimmEncoder("resnet18", weights=str(truncated))


def test_imagenet_weights_offline_names_where_it_looked():
    code = ("from pixelwise.models.encoders import TimmEncoder\n"
            "from pixelwise.core.errors import CheckpointError\n"
            "try:\n    TimmEncoder('resnet18', weights='imagenet')\n"
            "except CheckpointError as e:\n    print(e)\n")
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-hf", "TORCH_HOME": "/nonexistent-torch", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "ImageNet weights for encoder 'resnet18' not found locally" in out.stdout, out.stderr
    assert "/nonexistent-hf" in out.stdout and "/nonexistent-torch" in out.stdout
    assert "HF_HUB_OFFLINE" in out.stdout
