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
