"""Checkpoint ensembles: the mean of the members' logits, and checkpoints of different tasks refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.presets import get_preset
from pixelwise.models.checkpoint import CheckpointMeta, load_model, save_checkpoint
from pixelwise.models.ensemble import EnsembleModel, load_checkpoints, load_ensemble

# Three architectures (members of an ensemble need not share one), each trained at its own size.
MEMBERS = [("unet", {"base_filters": 4, "depth": 2}, (32, 48)),
           ("sepres_unet", {"widths": [4, 8, 16]}, (48, 64)),
           ("unet", {"base_filters": 4, "depth": 3, "upsample": "bilinear"}, None)]


def write_member(path, name, options, input_size, classes: ClassSpec, seed: int, **meta_fields):
    torch.manual_seed(seed)
    model = pixelwise.create_model(name, num_classes=classes.num_classes, **options)
    save_checkpoint(path, model, CheckpointMeta.for_model(model, classes, input_size=input_size, **meta_fields))
    return path


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    return [write_member(folder / f"m{k}.safetensors", name, options, size, get_preset("camvid"), seed=k)
            for k, (name, options, size) in enumerate(MEMBERS)]


@pytest.mark.parametrize("count", [2, 3])
def test_logits_are_the_mean_of_the_members(members, count):
    model, _ = load_ensemble(members[:count])
    singles = [load_model(path) for path in members[:count]]
    x = torch.randn(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))  # odd: every member pads
    with torch.no_grad():
        logits, each = model(x), [m(x) for m in singles]
    assert logits.shape == (2, 11, 37, 53)
    assert torch.equal(logits, sum(each) / count)
    assert not torch.equal(logits, each[0])  # the members really differ, so the mean is not one of them


def test_an_ensemble_built_in_memory_averages_too():
    torch.manual_seed(0)
    parts = [pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2).eval() for _ in range(2)]
    x = torch.randn(1, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(EnsembleModel(parts).eval()(x), (parts[0](x) + parts[1](x)) / 2)
    with pytest.raises(ConfigError, match="at least one"):
        EnsembleModel([])


def test_meta_is_the_firsts_with_the_members_listed(members):
    model, meta = load_ensemble(members)
    first = load_model(members[0]).meta
    assert meta.classes == first.classes and meta.input_size == (32, 48) and meta.model == "unet"
    for field in dataclasses.fields(CheckpointMeta):  # all of the first's, whatever fields CheckpointMeta gains
        if field.name != "extra":
            assert getattr(meta, field.name) == getattr(first, field.name), field.name
    assert meta.extra["ensemble"] == [str(p) for p in members]
    assert model.meta is meta and not model.training
    assert "ensemble" not in first.extra  # the first member's own metadata is left alone


def test_one_checkpoint_is_not_wrapped(members):
    for source in (members[0], str(members[0]), [members[0]]):
        model, meta = load_checkpoints(source)
        assert not isinstance(model, EnsembleModel) and "ensemble" not in meta.extra
    assert isinstance(load_checkpoints(members[:2])[0], EnsembleModel)


def other_task(tmp_path, **changes):
    """A checkpoint like the first member but with ``changes`` to its classes or normalisation."""
    classes = changes.pop("classes", get_preset("camvid"))
    return write_member(tmp_path / "other.safetensors", "unet", {"base_filters": 4, "depth": 2}, None, classes,
                        seed=5, **changes)


@pytest.mark.parametrize("changes,shown", [
    ({"classes": get_preset("binary")}, "classes (2 classes vs 11)"),
    ({"classes": ClassSpec.from_lists([*get_preset("camvid").names[:10], "bicycle"], ignore_index=11)},
     "class 10 is 'bicycle' vs 'bicyclist'"),
    ({"classes": get_preset("camvid").model_copy(update={"ignore_index": None})}, "ignore index (None vs 11)"),
    ({"mean": (0.5, 0.5, 0.5)}, "normalisation mean"),
    ({"std": (0.5, 0.5, 0.5)}, "normalisation std"),
])
def test_checkpoints_of_another_task_are_refused_in_one_line(members, tmp_path, changes, shown):
    other = other_task(tmp_path, **changes)
    with pytest.raises(ConfigError) as error:
        load_ensemble([members[0], other])
    message = str(error.value)
    assert "\n" not in message and shown in message, message
    assert str(other) in message and str(members[0]) in message


def test_colours_may_differ(members, tmp_path):
    camvid = get_preset("camvid")
    recoloured = ClassSpec.from_lists(camvid.names, [(k, k, k) for k in range(11)], camvid.ignore_index)
    _, meta = load_ensemble([members[0], other_task(tmp_path, classes=recoloured)])
    assert meta.classes == camvid  # the first's colours are the ensemble's


def test_a_checkpoint_named_twice_is_refused(members):
    twice = members[0].parent / ".." / members[0].parent.name / members[0].name  # the same file, spelt otherwise
    with pytest.raises(ConfigError, match="named twice"):
        load_ensemble([members[0], members[1], twice])



def test_an_ensemble_cannot_be_saved_as_one_checkpoint(members, tmp_path):
    ensemble, meta = load_ensemble(members[:2])
    with pytest.raises(ConfigError, match="save each registered model on its own"):
        save_checkpoint(tmp_path / "ensemble.safetensors", ensemble, meta)
    assert not (tmp_path / "ensemble.safetensors").exists()
