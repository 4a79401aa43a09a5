"""Tests for pixelwise.training.config (sizes, durations, recipes, errors) and the learning-rate schedules."""

from __future__ import annotations

import math
import re

import pytest

from pixelwise.core.errors import ConfigError
from pixelwise.training.config import TrainConfig, load_config, parse_duration, parse_size
from pixelwise.training.schedule import lr_factor

# --- parse_size / parse_duration ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("352x480", (352, 480)),
    (" 64 X 32 ", (64, 32)),
    ([352, 480], (352, 480)),
    (["16", "8"], (16, 8)),
    ((10, 20), (10, 20)),
    (256, (256, 256)),
    (None, None),
])
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["abc", "352x", "352*480", "1x2x3", [1, 2, 3], "12.5x10"])
def test_parse_size_rejects_bad_values(value):
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("90s", 90.0),
    ("30m", 1800.0),
    ("1h30m", 5400.0),
    ("2h", 7200.0),
    ("1h 30m 15s", 5415.0),
    ("1.5h", 5400.0),
    ("45", 45.0),
    (45, 45.0),
    (2.5, 2.5),
    (None, None),
])
def test_parse_duration(value, expected):
    result = parse_duration(value)
    assert result == expected
    assert result is None or isinstance(result, float)


@pytest.mark.parametrize("value", ["abc", "", "30 minutes", "m", "-5m", "1d"])
def test_parse_duration_rejects_bad_values(value):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


# --- TrainConfig / load_config -------------------------------------------------------------------


def test_defaults():
    cfg = TrainConfig()
    assert cfg.epochs == 30
    assert cfg.time_budget is None and cfg.time_budget_seconds is None
    assert cfg.img_size == (256, 256)
    assert cfg.batch_size == 8
    assert cfg.optimizer == "adamw" and cfg.schedule == "poly" and cfg.loss == "ce"
    assert cfg.augment.hflip is True and cfg.augment.scale == (0.75, 1.5)


def test_time_budget_leaves_epochs_unset():
    cfg = TrainConfig(time_budget="30m")
    assert cfg.epochs is None
    assert cfg.time_budget_seconds == 1800.0


def test_explicit_epochs_kept_with_time_budget():
    cfg = TrainConfig(epochs=5, time_budget="90s")
    assert cfg.epochs == 5 and cfg.time_budget_seconds == 90.0


def test_numeric_time_budget_is_seconds():
    cfg = TrainConfig(time_budget=120)
    assert cfg.time_budget == "120" and cfg.time_budget_seconds == 120.0


def test_load_config_yaml_with_overrides(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("data: data/camvid\nimg_size: 352x480\nbatch_size: 4\nlr: 0.01\n"
                    "augment: {hflip: false, noise: 0}\nclass_weights: [1, 2]\n")
    cfg = load_config(path, batch_size=16, lr=None, epochs=None, schedule="cosine")
    assert cfg.data == "data/camvid"
    assert cfg.img_size == (352, 480)
    assert cfg.batch_size == 16  # override wins
    assert cfg.lr == 0.01  # None override ignored
    assert cfg.epochs == 30  # None override ignored, default applies
    assert cfg.schedule == "cosine"
    assert cfg.augment.hflip is False and cfg.augment.noise == 0 and cfg.augment.color_jitter == 0.2
    assert cfg.class_weights == [1.0, 2.0]


def test_load_config_without_file():
    cfg = load_config(None, img_size="32x48", time_budget="1h")
    assert cfg.img_size == (32, 48) and cfg.time_budget_seconds == 3600.0 and cfg.epochs is None


def test_load_config_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == TrainConfig()


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("epochs: 3\nbatchsize: 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: batchsize: unknown option")


def test_unknown_nested_key_names_dotted_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("augment: {flip: true}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: augment.flip: unknown option")):
        load_config(path)


def test_unknown_override_key_without_file():
    with pytest.raises(ConfigError, match=r"^bogus: unknown option"):
        load_config(None, bogus=1)


@pytest.mark.parametrize(("key", "value", "pattern"), [
    ("batch_size", 0, r"batch_size: Input should be greater than or equal to 1"),
    ("optimizer", "rmsprop", r"optimizer: Input should be 'adamw' or 'sgd'"),
    ("img_size", "abc", r"img_size: 'abc' is not a size"),
    ("time_budget", "soon", r"time_budget: 'soon' is not a duration"),
    ("lr", 0, r"lr: Input should be greater than 0"),
    ("warmup", 1.0, r"warmup: Input should be less than 1"),
    ("schedule", "step", r"schedule: Input should be"),
])
def test_bad_value_names_key(tmp_path, key, value, pattern):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"{key}: {value!r}\n" if isinstance(value, str) else f"{key}: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: ")
    assert re.search(pattern, message)


def test_bad_override_value_names_key():
    with pytest.raises(ConfigError, match=r"^batch_size: Input should be greater than or equal to 1$"):
        load_config(None, batch_size=0)


@pytest.mark.parametrize("value", ["0x0", [-1, 5]])
def test_non_positive_img_size_is_config_error(value):
    with pytest.raises(ConfigError, match=r"img_size"):
        load_config(None, img_size=value)


def test_missing_recipe_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: recipe file not found")):
        load_config(path)


def test_recipe_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: a recipe is a mapping")):
        load_config(path)


def test_recipe_not_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid YAML")):
        load_config(path)


# --- lr schedule ---------------------------------------------------------------------------------


def test_warmup_rises_linearly():
    values = [lr_factor("poly", p, warmup=0.1) for p in (0.0, 0.025, 0.05, 0.075)]
    assert values == pytest.approx([0.01, 0.2575, 0.505, 0.7525])
    assert lr_factor("poly", 0.1, warmup=0.1) == pytest.approx(1.0)


@pytest.mark.parametrize(("progress", "expected"), [
    (0.0, 1.0),
    (0.5, 0.5 ** 0.9),
    (0.75, 0.25 ** 0.9),
    (1.0, 0.0),
])
def test_poly_without_warmup(progress, expected):
    assert lr_factor("poly", progress, warmup=0.0) == pytest.approx(expected)


def test_poly_after_warmup_rescales_progress():
    # warm-up 0.2: progress 0.6 is halfway through the decay
    assert lr_factor("poly", 0.6, warmup=0.2) == pytest.approx(0.5 ** 0.9)


@pytest.mark.parametrize(("progress", "expected"), [
    (0.0, 1.0),
    (0.25, 0.5 * (1 + math.cos(math.pi / 4))),
    (0.5, 0.5),
    (0.75, 0.5 * (1 - math.cos(math.pi / 4))),
    (1.0, 0.0),
])
def test_cosine_without_warmup(progress, expected):
    assert lr_factor("cosine", progress, warmup=0.0) == pytest.approx(expected, abs=1e-12)


def test_progress_is_clamped():
    assert lr_factor("cosine", -0.5, warmup=0.0) == 1.0
    assert lr_factor("poly", 1.5, warmup=0.0) == 0.0


def test_onecycle_warms_up_for_at_least_a_quarter():
    assert lr_factor("onecycle", 0.0, warmup=0.0) == pytest.approx(0.04)
    assert lr_factor("onecycle", 0.125, warmup=0.0) == pytest.approx(0.52)
    assert lr_factor("onecycle", 0.24, warmup=0.02) < 1.0
    assert lr_factor("onecycle", 0.25, warmup=0.0) == pytest.approx(1.0)
    # then cosine down to a small floor
    assert lr_factor("onecycle", 0.625, warmup=0.0) == pytest.approx(1e-4 + (1 - 1e-4) * 0.5)
    assert lr_factor("onecycle", 1.0, warmup=0.0) == pytest.approx(1e-4)
    # a longer warm-up than a quarter is kept
    assert lr_factor("onecycle", 0.2, warmup=0.4) == pytest.approx(0.04 + 0.96 * 0.5)


def test_constant_is_one_after_warmup():
    assert lr_factor("constant", 0.05, warmup=0.1) == pytest.approx(0.505)
    for p in (0.1, 0.3, 0.99, 1.0):
        assert lr_factor("constant", p, warmup=0.1) == 1.0
    assert lr_factor("constant", 0.0, warmup=0.0) == 1.0


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        lr_factor("step", 0.5, warmup=0.0)
