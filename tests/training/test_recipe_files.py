"""Every recipe shipped in configs/ is a valid recipe (unknown keys and bad values would be one error line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelwise.training.config import load_config

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_loads(path):
    recipe = load_config(path)
    assert recipe.data and recipe.time_budget_seconds


def test_the_trainval_recipe_is_the_val_runs_recipe_on_both_splits():
    """configs/camvid-trainval.yaml trains exactly what configs/camvid.yaml validated, on train + val."""
    configs = Path(__file__).resolve().parents[2] / "configs"
    val_run = load_config(configs / "camvid.yaml").model_dump()
    final = load_config(configs / "camvid-trainval.yaml").model_dump()
    assert final.pop("final_fit") and not val_run.pop("final_fit")
    assert final == val_run
