"""A checkpoint's ``predict_scale``: saved by training, and every path that predicts (the predictor, PyTorch
and exported evaluation, the training report) feeds the model its images enlarged that much."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import pixelwise
from pixelwise.data.formats import open_dataset
from pixelwise.data.presets import get_preset
from pixelwise.inference.predictor import Predictor
from pixelwise.models.checkpoint import CheckpointMeta, other_prediction_size, read_meta, save_checkpoint
from pixelwise.models.tta import prediction_scales
from pixelwise.testing import run_cli, run_main
from pixelwise.training.config import TrainConfig
from pixelwise.training.evaluate import score_samples


def recording_model(num_classes: int, predict_scale: float) -> tuple[torch.nn.Module, list]:
    """A tiny U-Net with its metadata (input size 16x24) that notes the size of every input it gets."""
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=num_classes, base_filters=4, depth=2).eval()
    model.meta = CheckpointMeta.for_model(model, get_preset("camvid") if num_classes == 11 else get_preset("binary"),
                                          input_size=(16, 24), predict_scale=predict_scale)
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    return model, seen


def test_the_predictor_feeds_the_model_enlarged_images():
    model, seen = recording_model(2, predict_scale=1.5)
    labels = Predictor(model, precision="fp32").predict(np.zeros((40, 50, 3), np.uint8))
    assert seen == [(24, 36)]  # 16x24 enlarged 1.5x
    assert labels.shape == (40, 50)  # labels at the image's own size all the same
    seen.clear()
    Predictor(model, precision="fp32", tta_scales=(1.0, 0.5)).predict(np.zeros((40, 50, 3), np.uint8))
    assert seen == [(24, 36), (12, 18)]  # TTA scales are relative to the enlarged image


def test_evaluation_feeds_the_model_enlarged_images(tiny_data):
    model, seen = recording_model(6, predict_scale=2.0)
    index = open_dataset(tiny_data, "auto")
    model.meta = replace(model.meta, classes=index.classes)
    score_samples(model, model.meta, index, index.split("val"), batch_size=4, precision="fp32")
    assert seen == [(32, 48)]
    seen.clear()
    score_samples(model, other_prediction_size(model.meta, (8, 8), 1.0), index, index.split("val"), precision="fp32")
    assert seen == [(8, 8)]


def test_meta_round_trip_and_older_checkpoints(tmp_path):
    model, _ = recording_model(2, predict_scale=1.5)
    save_checkpoint(tmp_path / "m.safetensors", model, model.meta)
    assert read_meta(tmp_path / "m.safetensors").predict_scale == 1.5
    older = json.loads(model.meta.to_json())
    del older["predict_scale"]  # a checkpoint written before the field existed predicts as it always did
    assert CheckpointMeta.from_json(json.dumps(older)).predict_scale == 1.0
    assert prediction_scales(1.5, (1.0, 2.0)) == [1.5, 3.0]


def test_recipe_values():
    assert TrainConfig().predict_scale == 1.0
    assert TrainConfig(predict_scale="1.5").predict_scale == 1.5
    with pytest.raises(ValueError, match="predict_scale"):
        TrainConfig(predict_scale=0)


def test_trained_checkpoint_keeps_it_and_evaluate_can_override_it(tiny_data, tmp_path):
    """`train --predict-scale 1.5` writes it into the checkpoint; `evaluate` scores with it (the same score as
    the model at scale 1 with a 1.5 TTA scale) and `--predict-scale 1` scores without it, into its own file."""
    run = tmp_path / "run"
    out = run_cli("train", "--data", str(tiny_data), "--epochs", "2", "--out", str(run), "--img-size", "32x48",
                  "--predict-scale", "1.5", "--model-option", "base_filters=4", "--model-option", "depth=3",
                  "--batch-size", "4", "--workers", "0", "--no-progress", "--precision", "fp32")
    assert out.returncode == 0, out.stderr
    ckpt = run / "best.safetensors"
    assert read_meta(ckpt).predict_scale == 1.5
    scores = {}
    for name, extra in (("eval_val.json", []), ("eval_val_x1.json", ["--predict-scale", "1"]),
                        ("eval_val_tta_x1.json", ["--predict-scale", "1", "--tta-scales", "1.5"])):
        result = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--precision", "fp32", *extra)
        assert result.returncode == 0, result.stderr
        scores[name] = json.loads((run / name).read_text())
    assert scores["eval_val.json"]["predict_scale"] == 1.5 and scores["eval_val_x1.json"]["predict_scale"] == 1.0
    assert scores["eval_val.json"]["miou"] == pytest.approx(scores["eval_val_tta_x1.json"]["miou"], abs=1e-9)
    sized = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--input-size", "16x24", "--precision", "fp32")
    assert sized.returncode == 0 and json.loads((run / "eval_val_16x24.json").read_text())["input_size"] == [16, 24]
    bad = run_main("evaluate", str(ckpt), "--data", str(tiny_data), "--predict-scale", "0")
    assert bad.returncode == 2 and "--predict-scale" in bad.stderr
