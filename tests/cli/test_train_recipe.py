"""``pixelwise train``'s flags become the recipe: each flag named like a TrainConfig field sets that field,
model options merge into the recipe's, and a resumed run keeps its recipe. No training runs here."""

from __future__ import annotations

import click
import pytest
import typer

from pixelwise.cli.main import app
from pixelwise.cli.train import build_recipe
from pixelwise.training.config import TrainConfig

# A value for every train flag that names a TrainConfig field, and what the field holds afterwards.
FIELD_FLAGS: dict[str, tuple[list[str], object]] = {
    "data": (["--data", "d"], "d"),
    "format": (["--format", "camvid"], "camvid"),
    "classes": (["--classes", "camvid"], "camvid"),
    "model": (["--model", "segnet"], "segnet"),
    "encoder": (["--encoder", "resnet18"], "resnet18"),
    "encoder_weights": (["--encoder-weights", "none"], "none"),
    "encoder_lr_mult": (["--encoder-lr-mult", "0.5"], 0.5),
    "freeze_encoder_epochs": (["--freeze-encoder-epochs", "2"], 2),
    "compile": (["--compile"], True),
    "epochs": (["--epochs", "3"], 3),
    "time_budget": (["--time-budget", "5m"], "5m"),
    "img_size": (["--img-size", "64x96"], (64, 96)),
    "batch_size": (["--batch-size", "2"], 2),
    "lr": (["--lr", "0.01"], 0.01),
    "loss": (["--loss", "ce+dice"], "ce+dice"),
    "optimizer": (["--optimizer", "sgd"], "sgd"),
    "schedule": (["--schedule", "cosine"], "cosine"),
    "grad_clip": (["--grad-clip", "2"], 2.0),
    "class_weights": (["--class-weights", "1,2.5"], [1.0, 2.5]),
    "precision": (["--precision", "fp32"], "fp32"),
    "device": (["--device", "cpu"], "cpu"),
    "workers": (["--workers", "1"], 1),
    "seed": (["--seed", "7"], 7),
    "patience": (["--patience", "4"], 4),
    "folds": (["--folds", "3"], 3),
    "final_fit": (["--final-fit"], True),  # excludes folds: checked in a recipe of its own below
    "crop_size": (["--crop-size", "32x32"], (32, 32)),
    "predict_scale": (["--predict-scale", "1.5"], 1.5),
    "ema": (["--ema", "0.99"], 0.99),
    "score_class": (["--score-class", "road"], "road"),
    "out": (["--out", "runs/x"], "runs/x"),
    "progress": (["--no-progress"], False),
    "save_every": (["--save-every", "500steps"], "500steps"),
    "init_from": (["--init-from", "runs/a/best.safetensors"], "runs/a/best.safetensors"),
    "max_bad_batches": (["--max-bad-batches", "3"], 3),
}


def train_params(*args: str) -> dict[str, object]:
    """``train``'s options by name, as the command receives them in ``ctx.params``."""
    command = typer.main.get_command(app)
    train = command.get_command(click.Context(command), "train")
    return train.make_context("train", list(args)).params


def recipe(*args: str) -> TrainConfig:
    return build_recipe(train_params(*args))


def test_every_flag_named_like_a_field_sets_it():
    flags_named_like_fields = set(train_params()) & set(TrainConfig.model_fields)
    assert flags_named_like_fields == set(FIELD_FLAGS)  # a new flag: add it above
    alone = {"final_fit"}  # cannot share a recipe with folds
    config = recipe(*[arg for field, (args, _) in FIELD_FLAGS.items() if field not in alone for arg in args])
    for field, (_, expected) in FIELD_FLAGS.items():
        if field not in alone:
            assert getattr(config, field) == expected, field
    for field in alone:
        args, expected = FIELD_FLAGS[field]
        assert getattr(recipe(*args), field) == expected, field


def test_flags_not_given_leave_the_recipe_alone(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("lr: 0.003\nschedule: constant\nprogress: false\n")
    config = recipe("--config", str(path), "--epochs", "2")
    assert (config.lr, config.schedule, config.progress, config.epochs) == (0.003, "constant", False, 2)
    assert config.model == TrainConfig().model


def test_model_options_merge_into_the_recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model_kwargs: {base_filters: 4, depth: 3}\n")
    config = recipe("--config", str(path), "--model-option", "depth=2", "--model-option", "blur=true",
                    "--upsample", "pixelshuffle")
    assert config.model_kwargs == {"base_filters": 4, "depth": 2, "blur": True, "upsample": "pixelshuffle"}


def test_a_resumed_run_keeps_its_recipe_and_flags_extend_it(tmp_path):
    (tmp_path / "config.yaml").write_text("lr: 0.003\nepochs: 5\nmodel_kwargs: {base_filters: 4}\n")
    resumed = recipe("--out", str(tmp_path), "--resume", "--epochs", "7", "--model-option", "depth=2")
    assert (resumed.lr, resumed.epochs, resumed.out) == (0.003, 7, str(tmp_path))
    assert resumed.model_kwargs == {"base_filters": 4, "depth": 2}
    fresh = recipe("--out", str(tmp_path), "--epochs", "7")  # without --resume the folder's recipe is not read
    assert fresh.lr == TrainConfig().lr


def test_bad_class_weights_name_the_flag():
    with pytest.raises(click.BadParameter, match="comma list of numbers"):
        recipe("--class-weights", "1,heavy")


def test_img_size_none_means_the_images_own_size():
    config = recipe("--img-size", "none", "--crop-size", "64x64")
    assert config.img_size is None and config.crop_size == (64, 64)
