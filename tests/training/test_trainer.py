"""The training loop: outputs, exact resume (also after Ctrl-C), run-folder safety."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from pixelwise.core.errors import ConfigError
from pixelwise.testing import TINY_MODEL
from pixelwise.training import trainer as trainer_module
from pixelwise.training.config import TrainConfig
from pixelwise.training.sampler import EpochSampler
from pixelwise.training.trainer import train


def recipe(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), img_size=(32, 48), batch_size=4, workers=0, progress=False,
                model_kwargs=TINY_MODEL, precision="fp32", lr=3e-3)
    return TrainConfig(**{**base, **kw})


def test_training_writes_the_run_folder(tiny_data, tmp_path):
    result = train(recipe(tiny_data, tmp_path / "run", epochs=2))
    run = tmp_path / "run"
    for name in ["best.safetensors", "best_metrics.json", "config.yaml", "metrics.csv", "curves.png",
                 "predictions.png", "last/model.safetensors", "last/state.pt"]:
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert int(rows[-1]["step"]) == 2 * (12 // 4)
    best = json.loads((run / "best_metrics.json").read_text())
    assert best["miou"] == max(float(r["val_miou"]) for r in rows) == result.best_metrics["miou"]
    assert result.epochs_done == 2 and result.stop_reason == "epochs done"


@pytest.mark.parametrize("stop_at,saved", [(4, (1, 3, 0)), (5, (1, 4, 1))], ids=["epoch-boundary", "mid-epoch"])
def test_interrupt_then_resume_continues_exactly(tiny_data, tmp_path, monkeypatch, stop_at, saved):
    """Ctrl-C saves the state of the last finished step; --resume continues from that very step and
    ends with the same weights as a run that was never interrupted."""
    straight = train(recipe(tiny_data, tmp_path / "a", epochs=2))
    calls = {"n": 0}
    original = trainer_module.normalize

    def interrupt(*args):  # the loop normalises each training batch once
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer_module, "normalize", interrupt)
    stopped = train(recipe(tiny_data, tmp_path / "b", epochs=2))
    assert stopped.stop_reason == "interrupted"
    state = torch.load(tmp_path / "b/last/state.pt", weights_only=True)["state"]
    assert (state["epoch"], state["step"], state["step_in_epoch"]) == saved
    monkeypatch.setattr(trainer_module, "normalize", original)
    resumed = train(recipe(tiny_data, tmp_path / "b", epochs=2), resume=True)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in straight.history] == [3, 6]
    assert resumed.history[-1]["val_miou"] == straight.history[-1]["val_miou"]
    a, b = load_file(tmp_path / "a/last/model.safetensors"), load_file(tmp_path / "b/last/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_time_budget_and_early_stopping(tiny_data, tmp_path):
    quick = train(recipe(tiny_data, tmp_path / "t", time_budget="1s", epochs=None))
    assert quick.stop_reason == "time budget spent" and quick.epochs_done >= 1
    patient = train(recipe(tiny_data, tmp_path / "p", epochs=20, lr=1e-9, patience=1))
    assert patient.stop_reason.startswith("early stop") and patient.epochs_done < 20


def test_one_process_trains_in_two_precisions(tiny_data, tmp_path):
    # Accelerate keeps one state per process; a second run asking for another precision (a notebook
    # training fp32, then bf16) must not stop with "AcceleratorState has already been initialized".
    for k, precision in enumerate(("fp32", "bf16", "fp32")):
        result = train(recipe(tiny_data, tmp_path / f"run{k}", epochs=1, precision=precision))
        assert result.epochs_done == 1


def test_an_earlier_run_is_never_overwritten(tiny_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already holds files"):
        train(recipe(tiny_data, run, epochs=1))
    assert (run / "best.safetensors").read_bytes() == b"precious"
    with pytest.raises(ConfigError, match="no saved training state"):
        train(recipe(tiny_data, tmp_path / "empty", epochs=1), resume=True)


def test_epoch_sampler_shards_cover_an_epoch_once():
    shards = [EpochSampler(10, seed=1, rank=r, world=3) for r in range(3)]
    for s in shards:
        s.set_epoch(4)
    seen = [i for s in shards for i in s]
    assert len(seen) == 9 and len(set(seen)) == 9  # equal shares, no duplicates
    again = EpochSampler(10, seed=1)
    again.set_epoch(4)
    other = EpochSampler(10, seed=1)
    other.set_epoch(5)
    assert list(again) != list(other)
    again.set_epoch(4, skip=3)
    full = EpochSampler(10, seed=1)
    full.set_epoch(4)
    assert list(again) == list(full)[3:]
