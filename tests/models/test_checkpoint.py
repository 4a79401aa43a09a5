"""Checkpoints rebuild their model alone and reject damaged files with one clear line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import pixelwise
from pixelwise.core.errors import CheckpointError
from pixelwise.data.presets import get_preset
from pixelwise.models.checkpoint import CheckpointMeta, read_meta, save_checkpoint


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=11, base_filters=4, depth=3).eval()
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("camvid"), input_size=(48, 64)))
    return path, model


def test_metadata_round_trip(checkpoint):
    path, _ = checkpoint
    meta = read_meta(path)
    assert meta.model == "unet" and meta.model_kwargs == {"num_classes": 11, "base_filters": 4, "depth": 3}
    assert meta.classes.names[3] == "road" and meta.classes.ignore_index == 11
    assert meta.mean == (0.485, 0.456, 0.406) and meta.input_size == (48, 64)


def test_truncated_checkpoint_is_one_clear_error(checkpoint, tmp_path):
    path, _ = checkpoint
    data = path.read_bytes()
    for n, cut in enumerate([data[:10], data[: len(data) // 2], b""]):
        bad = tmp_path / f"cut{n}.safetensors"
        bad.write_bytes(cut)
        with pytest.raises(CheckpointError, match=f"cut{n}.safetensors") as info:
            pixelwise.load_model(bad)
        assert "\n" not in str(info.value)


def test_foreign_safetensors_and_missing_file(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="without pixelwise metadata"):
        pixelwise.load_model(foreign)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        pixelwise.load_model(tmp_path / "none.safetensors")


def test_fresh_process_predicts_the_same_labels(checkpoint, tmp_path):
    from pixelwise.inference.predictor import Predictor

    path, _ = checkpoint
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    here = Predictor(path, precision="fp32").predict(image)
    code = ("import numpy as np, sys\nfrom pixelwise.inference.predictor import Predictor\n"
            f"labels = Predictor({str(path)!r}, precision='fp32').predict(np.load({str(tmp_path / 'image.npy')!r}))\n"
            f"np.save({str(tmp_path / 'labels.npy')!r}, labels)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    there = np.load(tmp_path / "labels.npy")
    assert here.shape == (50, 70) and np.array_equal(here, there)
