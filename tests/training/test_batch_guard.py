"""Numerical faults: an injected NaN batch is skipped before it changes the weights, logged with its files,
and never reaches a checkpoint; too many stop the run with a message naming the files."""

from __future__ import annotations

import pytest
import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file

import pixelwise.training.trainer as trainer_module
from pixelwise.core.errors import DataError
from pixelwise.data.formats import open_dataset
from pixelwise.testing import TINY_MODEL
from pixelwise.training.config import TrainConfig
from pixelwise.training.model_setup import build_model_and_optimizer
from pixelwise.training.trainer import train


def recipe(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), img_size=(32, 48), batch_size=4, workers=0, progress=False,
                model_kwargs=TINY_MODEL, precision="fp32", device="cpu", lr=3e-3, epochs=1)
    return TrainConfig(**{**base, **kw})


def poison_batch(monkeypatch, which: set[int]) -> None:
    """Make the training batches numbered ``which`` (from 1) all NaN, as a corrupt decode or a bad
    augmentation would (the loop normalises each training batch once)."""
    original, calls = trainer_module.normalize, {"n": 0}

    def poisoned(images, mean, std):
        calls["n"] += 1
        out = original(images, mean, std)
        return out * float("nan") if calls["n"] in which else out

    monkeypatch.setattr(trainer_module, "normalize", poisoned)


def test_a_nan_batch_is_skipped_logged_and_never_saved(tiny_data, tmp_path, monkeypatch, capsys):
    poison_batch(monkeypatch, {2})
    result = train(recipe(tiny_data, tmp_path / "run"))
    out = capsys.readouterr().out
    assert result.stop_reason == "epochs done"
    skip_lines = [line for line in out.splitlines() if "skipped the batch" in line]
    assert len(skip_lines) == 1 and "step 2" in skip_lines[0] and "the loss is nan" in skip_lines[0]
    assert skip_lines[0].count(".png") == 4  # the batch's four image files, by name
    state = torch.load(tmp_path / "run/last/state.pt", weights_only=True)
    assert state["state"]["bad_batches"] == 1 and state["state"]["step"] == 3
    for name in ("last/model.safetensors", "best.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(tmp_path / "run" / name).values()), name
    assert all(torch.isfinite(v["exp_avg"]).all() for v in state["optimizer"]["state"].values())


def test_a_nan_batch_leaves_the_weights_as_they_were(tiny_data, tmp_path, monkeypatch):
    # Every batch poisoned: no step may change a weight (nor a batch-norm statistic), so the run ends with
    # exactly the seeded initial weights.
    poison_batch(monkeypatch, set(range(1, 100)))
    config = recipe(tiny_data, tmp_path / "nan", max_bad_batches=100, num_preview=0)
    train(config)
    set_seed(config.seed)
    initial, _ = build_model_and_optimizer(config, open_dataset(tiny_data).classes.num_classes, False)
    saved = load_file(tmp_path / "nan/last/model.safetensors")
    assert saved.keys() == initial.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in initial.state_dict().items())


def test_too_many_nan_batches_stop_with_the_files_named(tiny_data, tmp_path, monkeypatch):
    poison_batch(monkeypatch, {1})
    with pytest.raises(DataError, match=r"training stopped at step 1: the loss is nan .*\.png.*lower --lr"):
        train(recipe(tiny_data, tmp_path / "run", max_bad_batches=0))
    assert not (tmp_path / "run/last").exists()  # nothing half-trained was saved
