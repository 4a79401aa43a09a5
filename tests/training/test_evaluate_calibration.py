"""`pixelwise evaluate` reports calibration (expected calibration error) beside the IoU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.calibration import Calibration
from pixelwise.data.synthetic import CLASSES
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import run_main


def test_evaluate_reports_the_ece_of_the_predicted_probabilities(tiny_data, tmp_path):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=6, base_filters=4, depth=2)
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(checkpoint, model, CheckpointMeta.for_model(model, CLASSES, input_size=(48, 64)))
    out = run_main("evaluate", str(checkpoint), "--data", str(tiny_data), "--precision", "fp32",
                   "--json", str(tmp_path / "metrics.json"))
    assert out.returncode == 0, out.stderr
    assert "expected calibration error" in out.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= metrics["ece"] <= 1 and len(metrics["calibration"]) == 15
    assert sum(b["pixels"] for b in metrics["calibration"]) == 4 * 48 * 64

    # The same score from the probabilities `Predictor.predict(..., return_probs=True)` gives for the val images.
    predictor = Predictor(checkpoint, precision="fp32", backend="torch")
    expected = Calibration()
    for image in sorted((tiny_data / "images" / "val").iterdir()):
        _, probs = predictor.predict(image, return_probs=True)
        mask = np.array(Image.open(tiny_data / "masks" / "val" / image.name)).astype(np.int64)
        expected.update(torch.log(torch.from_numpy(probs)), torch.from_numpy(mask))  # softmax(log p) = p
    assert metrics["ece"] == pytest.approx(expected.compute()["ece"], abs=1e-4)
