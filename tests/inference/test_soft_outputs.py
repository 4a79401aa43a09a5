"""Class probabilities and uncertainty outside the server: Predictor(return_probs=True) and
`pixelwise predict --save-probs / --save-uncertainty`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.errors import ConfigError
from pixelwise.core.uncertainty import uncertainty_map
from pixelwise.data.classes import ClassSpec
from pixelwise.inference.predictor import Predictor, predict_to_folder
from pixelwise.inference.soft_outputs import uncertainty_image
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import run_main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2)
    path = tmp_path_factory.mktemp("soft") / "model.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, ClassSpec.from_lists(["a", "b", "c"]),
                                                          input_size=(32, 48)))
    return path


@pytest.mark.parametrize("tile", [None, (32, 32)])
def test_return_probs_gives_the_same_labels_and_their_probabilities(checkpoint, tile):
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    predictor = Predictor(checkpoint, precision="fp32", backend="torch", tile=tile)
    labels = predictor.predict(image)
    same, probs = predictor.predict(image, return_probs=True)
    assert np.array_equal(same, labels)
    assert probs.shape == (3, 50, 70) and probs.dtype == np.float32
    assert np.allclose(probs.sum(0), 1.0, atol=1e-5)
    assert np.array_equal(probs.argmax(0), labels)


def test_predict_saves_probabilities_and_uncertainty(checkpoint, tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    out = run_main("predict", str(checkpoint), str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"),
                   "--backend", "torch", "--precision", "fp32", "--save-probs", "--save-uncertainty",
                   "--uncertainty", "margin")
    assert out.returncode == 0, out.stderr
    assert "wrote 4 files for 1 images" in out.stdout  # labels, overlay (the default), probs, uncertainty
    saved = np.load(tmp_path / "out" / "photo_probs.npz")
    _, probs = Predictor(checkpoint, precision="fp32", backend="torch").predict(image, return_probs=True)
    assert saved["probs"].dtype == np.float16 and saved["classes"].tolist() == ["a", "b", "c"]
    assert np.allclose(saved["probs"], probs, atol=1e-3)
    uncertainty = np.array(Image.open(tmp_path / "out" / "photo_uncertainty.png"))
    assert np.array_equal(uncertainty, uncertainty_image(probs, "margin"))
    expected = np.round((1 - probs.max(0)) * 255)
    assert np.abs(uncertainty.astype(int) - expected).max() <= 1


def test_an_unknown_uncertainty_is_refused_before_anything_is_written(checkpoint, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photo.png")
    with pytest.raises(ConfigError, match="entropy or margin"):
        predict_to_folder(checkpoint, [tmp_path / "photo.png"], tmp_path / "out", save_uncertainty="variance")
    assert not (tmp_path / "out").exists()
    bad = run_main("predict", str(checkpoint), str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"),
                   "--save-uncertainty", "--uncertainty", "variance")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "variance" in bad.stderr
    assert uncertainty_map(torch.full((2, 1, 1), 0.5)).item() == pytest.approx(1.0)
