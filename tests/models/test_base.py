"""SegmentationModel and the model registry: padding, cropping, resizing, init_kwargs, registration."""

from __future__ import annotations

import pkgutil
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import pixelwise.models
from pixelwise.core.errors import ConfigError
from pixelwise.core.registry import Registry
from pixelwise.models import registry
from pixelwise.models.base import SegmentationModel, logits_at_size
from pixelwise.models.deeplab import DeepLabV3Plus
from pixelwise.models.unet import UNet


class Strided(SegmentationModel):
    """A stride-``stride`` conv: logits at 1/stride of the padded input."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, stride: int = 4, note: str | None = None) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, num_classes, stride, stride=stride)
        self.multiple = 8

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


@pytest.fixture()
def fresh_registry(monkeypatch):
    """An empty model registry for the test, so its toy models never show up in `pixelwise models`."""
    monkeypatch.setattr(registry, "MODELS", Registry("model", hint="see `pixelwise models`"))
    return registry


def test_forward_pads_resizes_and_crops():
    torch.manual_seed(0)
    model = Strided(num_classes=3).eval()
    x = torch.randn(2, 3, 13, 21)
    with torch.no_grad():
        logits = model(x)
        # By hand: zero-pad bottom/right to 16x24, run the network, resize to 16x24, crop to 13x21.
        padded = F.pad(x, (0, 3, 0, 3))
        expected = F.interpolate(model.head(padded), size=(16, 24), mode="bilinear", align_corners=False)
    assert logits.shape == (2, 3, 13, 21)
    assert torch.equal(logits, expected[..., :13, :21])


def test_init_kwargs_are_the_callers_arguments_however_the_model_is_built(fresh_registry):
    assert Strided(5, 1, note=None).init_kwargs == {"num_classes": 5, "in_channels": 1}
    assert Strided().init_kwargs == {}
    fresh_registry.register_model("strided")(Strided)
    built = fresh_registry.create_model("strided", num_classes=5, in_channels=1, note=None)
    assert built.init_kwargs == {"num_classes": 5, "in_channels": 1} and built.model_name == "strided"
    # A subclass passing its own arguments on to its parent records the caller's, not the parent call's.
    unet = UNet(3, base_filters=4, depth=2)
    assert unet.init_kwargs == {"num_classes": 3, "base_filters": 4, "depth": 2}
    assert unet.model_name == "unet"


def test_unregistered_subclass_does_not_take_its_parents_name(fresh_registry):
    class MyUNet(UNet):
        pass

    assert UNet.model_name == "unet" and MyUNet.model_name == ""
    fresh_registry.register_model("my_unet")(MyUNet)
    assert MyUNet.model_name == "my_unet" and UNet.model_name == "unet"


def test_registration_needs_a_model_class_with_named_arguments(fresh_registry):
    def factory(num_classes: int = 2) -> nn.Module:
        return nn.Conv2d(3, num_classes, 1)

    with pytest.raises(TypeError, match="SegmentationModel subclass"):
        fresh_registry.register_model("factory")(factory)
    with pytest.raises(TypeError, match=r"\*args"):
        class Loose(SegmentationModel):
            def __init__(self, *sizes: int) -> None:
                super().__init__()


def test_create_model_errors_name_the_choices_and_options(fresh_registry):
    fresh_registry.register_model("strided")(Strided)
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; choose one of strided \(see `pixelwise models`\)"):
        fresh_registry.create_model("nope")
    with pytest.raises(ConfigError, match="model 'strided' has no option 'width'; its options are num_classes, "
                                          "in_channels, stride, note"):
        fresh_registry.create_model("strided", width=3)


def test_every_module_of_the_package_is_imported_and_every_model_described():
    names = {m.name for m in pkgutil.iter_modules(pixelwise.models.__path__)}
    assert {"unet", "segnet", "deeplab", "attention_unet", "sepres_unet"} <= names
    assert all(f"pixelwise.models.{name}" in sys.modules for name in names)
    for name in pixelwise.models.list_models():
        cls = registry.MODELS.get(name)
        assert issubclass(cls, SegmentationModel) and cls.model_name == name
        description = pixelwise.models.describe_model(name)
        assert description and description == cls.__doc__.strip().splitlines()[0]


def test_deeplab_logits_are_upsampled_from_stride_four():
    model = DeepLabV3Plus(num_classes=2, encoder="resnet18", aspp_channels=8, decoder_channels=8).eval()
    with torch.no_grad():
        assert model.forward_padded(torch.zeros(1, 3, 64, 96)).shape == (1, 2, 16, 24)
        assert model(torch.zeros(1, 3, 50, 70)).shape == (1, 2, 50, 70)



@pytest.mark.parametrize(("logits_size", "image_size", "out_size"), [
    ((11, 352, 480), (352, 480), (360, 480)),  # a 352x480 model's logits back to a CamVid frame
    ((11, 544, 720), (540, 720), (360, 480)),  # padded, predicted enlarged 1.5x, back to the frame
    ((3, 10, 12), (8, 9), (16, 18)),
    ((4, 30, 40), (30, 40), (90, 1)),
])
def test_logits_at_size_resizes_as_torchs_bilinear(logits_size, image_size, out_size):
    """On the CPU OpenCV resizes the logits (faster, GIL released): the same values as F.interpolate's
    bilinear, the same argmax; a tensor needing gradients (or a GPU's) takes torch's own path."""
    logits = torch.randn(*logits_size, generator=torch.Generator().manual_seed(0))
    fast = logits_at_size(logits, image_size, out_size)
    cropped = logits[None, :, : image_size[0], : image_size[1]]
    expected = F.interpolate(cropped, size=out_size, mode="bilinear", align_corners=False)[0]
    assert fast.shape == expected.shape and fast.dtype == torch.float32
    assert torch.allclose(fast, expected, atol=1e-3)
    assert torch.equal(fast.argmax(0), expected.argmax(0))
    graded = logits_at_size(logits.clone().requires_grad_(), image_size, out_size)
    assert graded.requires_grad and torch.allclose(graded.detach(), expected)
