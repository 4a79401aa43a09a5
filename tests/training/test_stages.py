"""A staged run (the recipe's ``final_stage``): one `train` command trains RUN/stage_1 at the recipe's size and
then the final stage in RUN at its own size from stage 1's best weights; --resume continues either stage."""

from __future__ import annotations

import csv

import pytest
import yaml

from pixelwise.core.errors import ConfigError
from pixelwise.models.checkpoint import load_checkpoint
from pixelwise.testing import TINY_MODEL, run_main
from pixelwise.training import trainer as trainer_module
from pixelwise.training.config import TrainConfig, load_config
from pixelwise.training.stages import stage_configs, train_in_stages

FINAL = {"img_size": "48x64", "batch_size": 2, "lr_scale": 0.5, "share": 0.25}


def recipe(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), img_size=(32, 48), batch_size=4, workers=0, progress=False,
                model_kwargs=TINY_MODEL, precision="fp32", device="cpu", lr=4e-3, epochs=4, final_stage=FINAL)
    return TrainConfig(**{**base, **kw})


def epochs_in(run) -> int:
    return len(list(csv.DictReader((run / "metrics.csv").open())))


def test_one_train_command_trains_both_stages(tiny_data, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "recipe.yaml"
    whole = recipe(tiny_data, run).model_dump(mode="json")
    config.write_text(yaml.safe_dump({k: v for k, v in whole.items() if k != "out"}))
    result = run_main("train", "--config", str(config), "--out", str(run), "--no-openvino")
    assert result.returncode == 0, result.stderr
    # Stage 1: 3 of the 4 epochs at 32x48 in batches of 4; the final stage: 1 epoch at 48x64 in batches of 2.
    first = load_checkpoint(run / "stage_1" / "best.safetensors")[1]
    final = load_checkpoint(run / "best.safetensors")[1]
    assert first.input_size == (32, 48) and final.input_size == (48, 64)
    assert epochs_in(run / "stage_1") == 3 and epochs_in(run) == 1
    saved = yaml.safe_load((run / "config.yaml").read_text())  # the whole recipe, which --resume reads
    assert saved["final_stage"]["img_size"] == [48, 64] and saved["img_size"] == [32, 48]
    assert yaml.safe_load((run / "stage_1" / "config.yaml").read_text())["final_stage"] is None
    assert f"from {run / 'stage_1' / 'best.safetensors'}" in result.stdout
    assert "peak lr 0.002" in result.stdout  # the recipe's 0.004 x lr_scale 0.5
    assert (run / "report.html").is_file() and (run / "stage_1" / "report.html").is_file()
    assert f"best val mIoU: {final_score(run):.4f}" in result.stdout  # the final stage's is the run's


def final_score(run) -> float:
    import json

    return json.loads((run / "best_metrics.json").read_text())["miou"]


@pytest.mark.parametrize("stop_at", [2, 12])  # a step of stage 1 (3 steps an epoch), or of the final stage
def test_resume_continues_the_stage_that_was_interrupted(tiny_data, tmp_path, monkeypatch, stop_at):
    config = recipe(tiny_data, tmp_path / "run")
    calls = {"n": 0}
    original = trainer_module.normalize

    def interrupt(*args):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer_module, "normalize", interrupt)
    stopped = train_in_stages(config)
    assert stopped.stop_reason == "interrupted"
    run = tmp_path / "run"
    assert not (run / "best.safetensors").exists()
    stage_1 = (run / "stage_1" / "best.safetensors").read_bytes() if stop_at == 12 else None
    monkeypatch.setattr(trainer_module, "normalize", original)
    with pytest.raises(ConfigError, match="already holds files"):
        train_in_stages(config)  # without --resume an existing run is never overwritten
    resumed = load_config(run / "config.yaml")  # as `train --out RUN --resume` reads it
    done = train_in_stages(resumed, resume=True)
    assert done.stop_reason == "epochs done" and done.run_dir == run
    assert epochs_in(run / "stage_1") == 3 and epochs_in(run) == 1
    if stage_1 is not None:  # a finished stage 1 is kept, not trained again
        assert (run / "stage_1" / "best.safetensors").read_bytes() == stage_1


def test_the_interrupted_message_names_the_whole_run(tiny_data, tmp_path, monkeypatch, capsys):
    original = trainer_module.normalize
    calls = {"n": 0}

    def interrupt(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer_module, "normalize", interrupt)
    train_in_stages(recipe(tiny_data, tmp_path / "run"))
    assert f"continue with: pixelwise train --out {tmp_path / 'run'} --resume" in capsys.readouterr().out


def test_the_stages_share_the_budget_and_the_final_one_refines(tmp_path):
    config = recipe("data", tmp_path / "run", epochs=None, time_budget="1h", freeze_encoder_epochs=2)
    first, final = stage_configs(config)
    assert (first.time_budget_seconds, final.time_budget_seconds) == (2700.0, 900.0)
    assert (first.img_size, first.batch_size, first.lr) == ((32, 48), 4, 4e-3)
    assert (final.img_size, final.batch_size, final.lr) == ((48, 64), 2, 2e-3)
    assert first.freeze_encoder_epochs == 2 and final.freeze_encoder_epochs == 0
    assert first.final_stage is None and final.final_stage is None


@pytest.mark.parametrize(("change", "message"), [
    ({"folds": 3}, "cross-validate without final_stage"),
    ({"epochs": 1}, "final_stage needs 2 epochs at least"),
    ({"final_stage": {"img_size": "none"}}, "final_stage.img_size: the final stage needs a size HxW"),
    ({"final_stage": {"img_size": 64, "share": 1.5}}, "final_stage.share: Input should be less than 1"),
    ({"final_stage": {"img_size": 64, "batch": 4}}, "final_stage.batch: unknown option"),
])
def test_bad_final_stages_are_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, **{"data": "d", "final_stage": {"img_size": 64}, **change})


def test_a_final_fit_in_stages_keeps_each_stages_last_epoch(tiny_data, tmp_path):
    """configs/camvid-trainval.yaml: both stages train on train + val, and each keeps its last epoch (val cannot
    choose one); the final stage starts from stage 1's last epoch."""
    result = train_in_stages(recipe(tiny_data, tmp_path / "run", final_fit=True))
    run = tmp_path / "run"
    for folder, epochs in ((run / "stage_1", 3), (run, 1)):
        rows = list(csv.DictReader((folder / "metrics.csv").open()))
        assert len(rows) == epochs
        assert load_checkpoint(folder / "best.safetensors")[1].extra["epoch"] == epochs  # the last, whatever val says
        assert yaml.safe_load((folder / "config.yaml").read_text())["final_fit"] is True
    assert result.epochs_done == 1 and result.stop_reason == "epochs done"
