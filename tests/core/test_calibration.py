"""Expected calibration error and the uncertainty maps: known values, ignored pixels, edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from pixelwise.core.calibration import Calibration
from pixelwise.core.errors import ConfigError
from pixelwise.core.uncertainty import uncertainty_map


def logits_for(confidence: float, classes: int = 2) -> torch.Tensor:
    """Logits of one pixel whose top class (0) has probability ``confidence``."""
    rest = (1 - confidence) / (classes - 1)
    return torch.log(torch.tensor([confidence] + [rest] * (classes - 1))).view(classes, 1, 1)


def test_a_calibrated_model_scores_zero_and_an_overconfident_one_does_not():
    calibrated, overconfident = Calibration(), Calibration()
    for k in range(20):  # 0.75 confident everywhere, right on 15 of 20 pixels
        target = torch.tensor([[0 if k < 15 else 1]])
        calibrated.update(logits_for(0.75), target)
        overconfident.update(logits_for(0.99), target)
    assert calibrated.compute()["ece"] == pytest.approx(0.0, abs=1e-6)
    assert overconfident.compute()["ece"] == pytest.approx(0.99 - 0.75, abs=1e-6)
    bins = calibrated.compute()["bins"]
    assert len(bins) == 15 and sum(b["pixels"] for b in bins) == 20
    full = next(b for b in bins if b["pixels"])
    assert full["low"] <= 0.75 < full["high"] and full["accuracy"] == pytest.approx(0.75)


def test_ignored_pixels_and_empty_input():
    calibration = Calibration(bins=4)
    calibration.update(torch.zeros(3, 2, 2), torch.tensor([[-1, 255], [-1, -1]]))  # nothing counts
    assert math.isnan(calibration.compute()["ece"])
    calibration.update(torch.tensor([[[9.0]], [[0.0]], [[0.0]]]), torch.tensor([[0]]))  # p = 0.9998, right
    result = calibration.compute()
    assert result["bins"][3]["pixels"] == 1 and result["ece"] == pytest.approx(1 - 0.99975, abs=1e-4)


def test_uncertainty_maps():
    certain = torch.tensor([[[1.0]], [[0.0]], [[0.0]]])
    uniform = torch.full((3, 1, 1), 1 / 3)
    assert float(uncertainty_map(certain, "entropy")) == 0.0 and float(uncertainty_map(certain, "margin")) == 0.0
    assert float(uncertainty_map(uniform, "entropy")) == pytest.approx(1.0)
    assert float(uncertainty_map(uniform, "margin")) == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="entropy or margin"):
        uncertainty_map(uniform, "variance")
