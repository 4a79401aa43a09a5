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


def test_crops_at_native_size_train_and_set_tiled_prediction_in_the_checkpoint(tiny_data, tmp_path):
    """img_size None + crop_size: training batches are crops, validation scores whole images at their own
    size, and the checkpoint tells the predictor to tile with the crop's size when images are > 4 crops."""
    from pixelwise.inference.predictor import Predictor
    from pixelwise.models.checkpoint import read_meta

    result = train(recipe(tiny_data, tmp_path / "run", epochs=1, img_size=None, crop_size=(16, 16)))
    meta = read_meta(result.best_checkpoint)
    assert meta.input_size is None and meta.tile == (16, 16)
    assert Predictor(result.best_checkpoint, precision="fp32").tile == (16, 16)
    assert Predictor(result.best_checkpoint, precision="fp32", tile=None).tile is None  # --tile none
    resized = train(recipe(tiny_data, tmp_path / "resized", epochs=1, crop_size=(16, 16)))
    assert read_meta(resized.best_checkpoint).tile is None  # trained at img_size: predicted whole, resized
    small = train(recipe(tiny_data, tmp_path / "small", epochs=1, img_size=None, crop_size=(32, 48)))
    assert read_meta(small.best_checkpoint).tile is None  # 48x64 images are 2x the crop: predicted whole


def test_score_class_picks_the_best_epoch_and_must_be_a_class(tiny_data, tmp_path):
    result = train(recipe(tiny_data, tmp_path / "run", epochs=2, score_class="road"))
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    best = max(rows, key=lambda r: float(r["val_score"]))
    assert result.best_metrics["per_class"]["road"]["iou"] == pytest.approx(float(best["val_score"]))
    with pytest.raises(ConfigError, match="score_class 'nope' is not a class"):
        train(recipe(tiny_data, tmp_path / "bad", epochs=1, score_class="nope"))
    assert not (tmp_path / "bad" / "config.yaml").exists()


def test_final_fit_trains_on_train_and_val_and_keeps_the_last_epoch(tiny_data, tmp_path):
    from pixelwise.data.formats import open_dataset
    from pixelwise.training.data_setup import chosen_splits

    cfg = recipe(tiny_data, tmp_path / "run", epochs=3, final_fit=True, lr=0.3)  # a wild lr: epochs get worse
    train_samples, val_samples = chosen_splits(cfg, open_dataset(str(tiny_data)))
    assert len(train_samples) == 12 + 4 and set(val_samples) <= set(train_samples)
    result = train(cfg)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert torch.load(tmp_path / "run/last/state.pt", weights_only=True)["state"]["best_epoch"] == 3
    assert result.best_metrics["miou"] == pytest.approx(float(rows[-1]["val_miou"]))
    with pytest.raises(ValueError, match="final_fit"):
        TrainConfig(data=str(tiny_data), final_fit=True, folds=3)


def test_ema_weights_are_validated_saved_and_resumed_exactly(tiny_data, tmp_path, monkeypatch):
    """With ema set, best.safetensors holds the averaged weights (not the raw ones), and an interrupted,
    resumed run ends with the same average as one never interrupted."""
    straight = train(recipe(tiny_data, tmp_path / "a", epochs=2, ema=0.8, final_fit=True))
    best = load_file(straight.best_checkpoint)
    averaged, raw = load_file(tmp_path / "a/last/ema.safetensors"), load_file(tmp_path / "a/last/model.safetensors")
    assert all(torch.equal(best[k], averaged[f"module.{k}"]) for k in best)
    assert not all(torch.equal(best[k], raw[k]) for k in best if k.endswith("weight"))
    calls, original = {"n": 0}, trainer_module.normalize

    def interrupt(*args):
        calls["n"] += 1
        if calls["n"] == 5:  # mid-way through the second epoch
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer_module, "normalize", interrupt)
    assert train(recipe(tiny_data, tmp_path / "b", epochs=2, ema=0.8, final_fit=True)).stop_reason == "interrupted"
    monkeypatch.setattr(trainer_module, "normalize", original)
    train(recipe(tiny_data, tmp_path / "b", epochs=2, ema=0.8, final_fit=True), resume=True)
    resumed = load_file(tmp_path / "b/last/ema.safetensors")
    assert all(torch.equal(averaged[k], resumed[k]) for k in averaged)
