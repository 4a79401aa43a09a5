"""init_from: a recipe starts from another run's weights (a fine-tune at another size), same model and classes."""

import pytest
import torch

from pixelwise.core.errors import ConfigError
from pixelwise.data.classes import ClassSpec
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import TINY_MODEL
from pixelwise.training.config import TrainConfig
from pixelwise.training.model_setup import build_model


def saved_tiny(path, num_classes=3):
    torch.manual_seed(123)
    model = create_model("unet", num_classes=num_classes, **TINY_MODEL)
    classes = ClassSpec.from_lists([f"c{i}" for i in range(num_classes)])
    save_checkpoint(path, model, CheckpointMeta.for_model(model, classes))
    return model


def test_the_model_starts_from_the_checkpoint_weights(tmp_path):
    source = saved_tiny(tmp_path / "a.safetensors")
    cfg = TrainConfig(model="unet", model_kwargs=TINY_MODEL, init_from=str(tmp_path / "a.safetensors"), seed=7)
    model = build_model(cfg, num_classes=3, channels_last=False)
    for (name, ours), theirs in zip(model.state_dict().items(), source.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs), name
    fresh = build_model(TrainConfig(model="unet", model_kwargs=TINY_MODEL), num_classes=3, channels_last=False)
    assert not torch.equal(next(iter(fresh.state_dict().values())), next(iter(source.state_dict().values())))


def test_another_model_or_other_classes_is_one_clear_error(tmp_path):
    saved_tiny(tmp_path / "a.safetensors", num_classes=5)
    cfg = TrainConfig(model="unet", model_kwargs=TINY_MODEL, init_from=str(tmp_path / "a.safetensors"))
    with pytest.raises(ConfigError, match=r"a\.safetensors: init_from holds a 'unet' model .*num_classes.: 5"):
        build_model(cfg, num_classes=3, channels_last=False)
