"""``--outputs``: which files predict writes, and the thread-pool writer that writes them (the same pixels as
drawing and encoding them one after the other)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.core.draw import colorize, overlay
from pixelwise.core.errors import ConfigError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.io import read_image
from pixelwise.inference.outputs import DEFAULT_OUTPUTS, OutputWriter, Prediction, output_paths, parse_outputs
from pixelwise.inference.predictor import Predictor, predict_to_folder
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.testing import assert_one_line_error, run_main

CLASSES = ClassSpec.from_lists(["a", "b", "c"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=3, base_filters=4, depth=2)
    path = tmp_path_factory.mktemp("outputs") / "model.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, CLASSES, input_size=(32, 48)))
    return path


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(11):  # more than the writer queues (2 x its threads), so it waits on itself too
        Image.fromarray(rng.integers(0, 255, (30 + k, 45, 3), dtype=np.uint8)).save(folder / f"p{k:02d}.png")
    return folder


def overlay_reference(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The overlay as it was drawn before it blended the whole image: only the valid pixels, by boolean index."""
    valid = (labels >= 0) & (labels < len(palette))
    blended = alpha * colorize(labels, palette).astype(np.float32) + (1.0 - alpha) * image.astype(np.float32)
    out = image.copy()
    out[valid] = np.clip(np.rint(blended[valid]), 0, 255).astype(np.uint8)
    for cls in np.unique(labels[valid]):
        contours, _ = cv2.findContours((labels == cls).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in palette[cls]), thickness=1)
    return out


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_overlay_blends_as_before(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    labels = rng.integers(-1, 5, (40, 50))  # -1 and 3, 4: void for a 3-colour palette
    palette = rng.integers(0, 256, (3, 3), dtype=np.uint8)
    assert np.array_equal(overlay(image, labels, palette, alpha), overlay_reference(image, labels, palette, alpha))


def test_parse_outputs_orders_and_refuses_unknown_names():
    assert parse_outputs("overlay, labels,color") == ("labels", "color", "overlay")
    assert DEFAULT_OUTPUTS == ("labels", "overlay")
    with pytest.raises(ConfigError, match="'colour' is not an output; name one or more of labels, color, overlay"):
        parse_outputs("labels,colour")
    with pytest.raises(ConfigError, match="is not an output"):
        parse_outputs("")


def test_the_writer_writes_the_pixels_drawn_one_by_one(checkpoint, photos, tmp_path):
    files = sorted(photos.iterdir())
    targets = predict_to_folder(checkpoint, [photos], tmp_path / "out", precision="fp32", backend="torch",
                                progress=False, outputs="labels,color,overlay")
    predictor = Predictor(checkpoint, precision="fp32", backend="torch")
    for path, target in zip(files, targets, strict=True):
        assert sorted(target) == ["color", "labels", "overlay"]
        labels = predictor.predict(path)
        image = read_image(path)
        assert np.array_equal(np.array(Image.open(target["labels"])), labels)
        assert np.array_equal(read_image(target["color"]), colorize(labels, CLASSES.palette))
        assert np.array_equal(read_image(target["overlay"]), overlay_reference(image, labels, CLASSES.palette))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for t in targets for p in t.values())


def test_a_failed_write_is_raised_in_the_caller(tmp_path):
    labels = np.zeros((4, 5), np.uint8)
    (tmp_path / "taken_labels.png").mkdir()  # a folder where the file should go: the rename fails
    prediction = Prediction(tmp_path / "taken.png", labels, None, CLASSES.palette, CLASSES.names)
    with pytest.raises(OSError), OutputWriter(threads=2) as writer:
        writer.submit(prediction, output_paths(tmp_path, [tmp_path / "taken.png"], ["labels"])[0])
    assert (tmp_path / "taken_labels.png").is_dir() and len(list(tmp_path.iterdir())) == 1  # nothing left behind


def test_cli_outputs_choose_the_files(checkpoint, photos, tmp_path):
    image = str(photos / "p00.png")
    default = run_main("predict", str(checkpoint), image, "--out", str(tmp_path / "a"), "--backend", "torch")
    assert default.returncode == 0, default.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["p00_labels.png", "p00_overlay.png"]
    chosen = run_main("predict", str(checkpoint), image, "--out", str(tmp_path / "b"), "--backend", "torch",
                      "--outputs", "color,probs")
    assert chosen.returncode == 0, chosen.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["p00_color.png", "p00_probs.npz"]


def test_cli_outputs_errors_are_one_line(checkpoint, photos, tmp_path):
    image = str(photos / "p00.png")
    bad = run_main("predict", str(checkpoint), image, "--out", str(tmp_path / "c"), "--outputs", "labels,mask")
    assert_one_line_error(bad, "--outputs 'labels,mask'", "'mask' is not an output", "labels, color, overlay")
    no_labels = run_main("predict", str(checkpoint), image, "--out", str(tmp_path / "c"), "--outputs", "overlay",
                         "--to", "coco")
    assert_one_line_error(no_labels, "--to coco needs the labels output")
    assert not (tmp_path / "c").exists()
