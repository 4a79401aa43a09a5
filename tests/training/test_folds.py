"""K-fold cross-validation: the folds partition the train split, `train --folds` trains and scores them out of
fold, and --resume skips the finished folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.checks import scan_dataset
from pixelwise.data.formats import open_dataset
from pixelwise.testing import TINY_MODEL, run_main
from pixelwise.training import folds as folds_module
from pixelwise.training import trainer as trainer_module
from pixelwise.training.config import TrainConfig, load_config
from pixelwise.training.data_setup import chosen_splits, fold_split
from pixelwise.training.folds import fold_config, train_folds
from pixelwise.training.run_dir import run_progress, training_done
from pixelwise.training.state import TrainState

FAST = ["--img-size", "32x48", "--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32",
        "--device", "cpu", "--lr", "0.003", "--epochs", "1",
        *[arg for key, value in TINY_MODEL.items() for arg in ("--model-option", f"{key}={value}")]]


def recipe(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), img_size=(32, 48), batch_size=4, workers=0, progress=False,
                model_kwargs=TINY_MODEL, precision="fp32", device="cpu", lr=3e-3, epochs=1, folds=2)
    return TrainConfig(**{**base, **kw})


def names(samples) -> list[str]:
    return [s.image.name for s in samples]


def test_folds_partition_the_train_split(tiny_data):
    pooled = open_dataset(tiny_data).split("train")
    parts = [fold_split(pooled, 5, k, seed=0) for k in range(5)]
    held_out = [names(held) for _, held in parts]
    assert sorted(n for held in held_out for n in held) == sorted(names(pooled))  # each image held out once
    assert sorted(len(held) for held in held_out) == [2, 2, 2, 3, 3]
    for train, held in parts:
        assert names(train) == [n for n in names(pooled) if n not in names(held)]  # the rest, in split order
    # Deterministic for a seed, whatever order the samples come in; another seed deals other folds.
    assert [names(fold_split(pooled[::-1], 5, k, seed=0)[1]) for k in range(5)] == [h[::-1] for h in held_out]
    assert [names(fold_split(pooled, 5, k, seed=1)[1]) for k in range(5)] != held_out
    with pytest.raises(DataError, match="13 folds need at least 13 training images"):
        fold_split(pooled, 13, 0, seed=0)


def test_a_fold_trains_on_the_other_folds_and_never_reads_val(tiny_data, tmp_path):
    index = open_dataset(tiny_data)
    train, held = chosen_splits(recipe(tiny_data, tmp_path, fold=1, folds=3), index)
    assert names(held) == names(fold_split(index.split("train"), 3, 1, seed=0)[1])
    assert sorted(names(train) + names(held)) == sorted(names(index.split("train")))
    assert not set(names(train) + names(held)) & set(names(index.split("val")))
    with pytest.raises(ConfigError, match="fold: fold 2 needs folds greater than it"):
        load_config(None, folds=2, fold=2)
    with pytest.raises(ConfigError, match="fold: fold 0 needs folds greater than it"):
        load_config(None, fold=0)


def test_train_folds_on_the_command_line(tiny_data, tmp_path):
    run = tmp_path / "cv"
    result = run_main("train", "--data", str(tiny_data), "--folds", "2", "--out", str(run), *FAST)
    assert result.returncode == 0, result.stderr
    for k in (0, 1):
        assert (run / f"fold_{k}" / "best.safetensors").is_file()
        assert yaml.safe_load((run / f"fold_{k}" / "config.yaml").read_text())["fold"] == k
    assert yaml.safe_load((run / "config.yaml").read_text())["folds"] == 2
    cv = json.loads((run / "cv_metrics.json").read_text())
    # The out-of-fold confusion matrix counts each held-out fold's labelled pixels, per class, once.
    index = open_dataset(tiny_data)
    held_out = [fold_split(index.split("train"), 2, k, seed=0)[1] for k in (0, 1)]
    held_pixels = sum(scan_dataset(held, index.classes, reader=index.reader).class_pixels[:-1] for held in held_out)
    assert np.array_equal(np.array(cv["confusion"]).sum(axis=1), held_pixels)
    assert [cv["per_class"][name]["pixels"] for name in index.classes.names] == held_pixels.tolist()
    assert cv["images"] == 12 and [f["images"] for f in cv["per_fold"]] == [len(h) for h in held_out]
    for k, fold in enumerate(cv["per_fold"]):
        # Each fold's best checkpoint, scored again on its held-out images, as the trainer validated it.
        best = json.loads((run / f"fold_{k}" / "best_metrics.json").read_text())
        assert fold["miou"] == pytest.approx(best["miou"], abs=1e-6)
    assert cv["ensemble"]["split"] == "val" and cv["ensemble"]["images"] == 4
    assert f"pixelwise predict {run.as_posix()}/fold_*/best.safetensors IMAGES --out preds" in result.stdout
    assert f"out-of-fold mIoU {cv['miou']:.4f} over the 12 'train' images" in result.stdout
    assert f"mIoU {cv['ensemble']['miou']:.4f} (4 images)" in result.stdout


def test_resume_skips_finished_folds_and_continues_the_interrupted_one(tiny_data, tmp_path, monkeypatch):
    config = recipe(tiny_data, tmp_path / "cv")
    calls = {"n": 0}
    original = trainer_module.normalize

    def interrupt_fold_1(*args):  # fold 0 trains one step (6 images, batch 4); the second is fold 1's
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer_module, "normalize", interrupt_fold_1)
    stopped = train_folds(config)
    assert stopped.stop_reason == "interrupted" and stopped.metrics is None
    run = tmp_path / "cv"
    folds = [fold_config(config, run, k) for k in (0, 1)]
    assert [run_progress(f) for f in folds] == ["finished", "unfinished"]
    assert not (run / "cv_metrics.json").exists()
    fold_0 = (run / "fold_0" / "best.safetensors").read_bytes()
    monkeypatch.setattr(trainer_module, "normalize", original)
    with pytest.raises(ConfigError, match="already holds files"):
        train_folds(config)  # without --resume an existing run is never overwritten
    with pytest.raises(ConfigError, match="has seed 0, not 1"):
        train_folds(config.model_copy(update={"seed": 1}), resume=True)  # it would deal other folds
    done = train_folds(config, resume=True)
    assert done.stop_reason == "folds done" and calls["n"] == 2  # fold 0 was not trained again...
    assert (run / "fold_0" / "best.safetensors").read_bytes() == fold_0
    assert [run_progress(f) for f in folds] == ["finished", "finished"]  # ...fold 1 was finished
    assert json.loads((run / "cv_metrics.json").read_text())["folds"] == 2


def test_a_saved_state_is_done_when_a_stop_rule_ran_out():
    epochs, budget, patient = TrainConfig(epochs=3), TrainConfig(time_budget="60s"), TrainConfig(epochs=9, patience=2)
    assert training_done(TrainState(epoch=3), epochs) and not training_done(TrainState(epoch=2), epochs)
    assert not training_done(TrainState(epoch=3, step_in_epoch=1), epochs)  # saved mid-epoch: interrupted
    assert training_done(TrainState(epoch=1, elapsed=61.0), budget) and not training_done(TrainState(elapsed=5), budget)
    assert training_done(TrainState(epoch=4, stale=2), patient) and not training_done(TrainState(epoch=4), patient)


def test_the_time_budget_is_shared_and_the_plan_made_for_one_share(monkeypatch, tmp_path):
    config = TrainConfig(data="d", folds=4, time_budget="1h")
    assert [fold_config(config, tmp_path, k).time_budget_seconds for k in range(4)] == [900.0] * 4
    asked = {}

    def fake_plan(given):  # the planner measures this machine's speed: too slow for a unit test
        asked.update(given)
        return load_config(None, **given), None

    monkeypatch.setattr(folds_module, "planned_config", fake_plan)
    planned, _ = folds_module.planned_folds_config({"data": "d", "folds": 4, "time_budget": "1h"})
    assert asked["time_budget"] == "900s" and planned.time_budget == "1h"
    planned, _ = folds_module.planned_folds_config({"data": "d", "folds": 3})
    assert asked["time_budget"] == "600s" and planned.time_budget == "30m"  # the default budget, shared
