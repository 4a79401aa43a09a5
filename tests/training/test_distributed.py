"""Data-parallel training: two CPU processes (gloo) under torchrun score exactly what one process scores.

The validation split has 5 images, so the two processes get 3 and 2: a sampler that padded the
shares to equal length would count one image twice and the metrics would differ from a single
process's evaluation of the same weights.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

import pixelwise

STEPS_PER_EPOCH = 4  # 16 train images / 2 processes / batch 2


@pytest.fixture(scope="module")
def odd_val_data(tmp_path_factory) -> Path:
    """16 train and 5 val images of 32x48: a val split the two processes cannot share evenly."""
    from pixelwise.data.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("odd") / "data", n_train=16, n_val=5, height=32, width=48)


@pytest.mark.slow
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with the gloo backend is not available in this torch build")
def test_two_processes_train_and_score_like_one(odd_val_data, tmp_path):
    runs = tmp_path / "runs"
    # --standalone: torchrun's rendezvous on a free port of localhost, so parallel test runs never collide.
    # The frozen first epoch exercises DDP with parameters that get no gradient; the time budget (never
    # reached) exercises the per-step agreement on the clock.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "pixelwise", "train", "--data", str(odd_val_data), "--out", str(runs / "run"),
               "--epochs", "3", "--img-size", "32x48", "--batch-size", "2", "--lr", "0.03", "--workers", "0",
               "--precision", "fp32", "--device", "cpu", "--no-progress", "--freeze-encoder-epochs", "1",
               "--time-budget", "10m", "--model-option", "base_filters=4", "--model-option", "depth=2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    # One run folder, written by rank 0 alone: no second folder, no half-written files.
    assert [p.name for p in runs.iterdir()] == ["run"]
    run = runs / "run"
    for name in ["best.safetensors", "best_metrics.json", "config.yaml", "metrics.csv", "curves.png",
                 "predictions.png", "last/model.safetensors", "last/state.pt"]:
        assert (run / name).is_file(), name
    assert not list(run.rglob("*.tmp"))
    assert "2 process(es)" in output
    assert output.count("epoch 1/3:") == 1  # only rank 0 logs

    # One row per epoch; the step counts are those of each process's equal share.
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["step"]) for r in rows] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH]

    # The all-reduced validation equals one process scoring every image with rank 0's saved weights.
    best = json.loads((run / "best_metrics.json").read_text())
    assert best["miou"] == max(float(r["val_miou"]) for r in rows)
    alone = pixelwise.evaluate(run / "best.safetensors", odd_val_data, split="val", batch_size=2, workers=0,
                               device="cpu", precision="fp32")
    assert alone["miou"] == pytest.approx(best["miou"], abs=1e-6)
    for name, scores in alone["per_class"].items():
        assert scores["pixels"] == best["per_class"][name]["pixels"], name  # every val image counted once
        for key in ("iou", "dice", "accuracy"):
            assert scores[key] == pytest.approx(best["per_class"][name][key], abs=1e-6), (name, key)
    assert sum(s["pixels"] for s in alone["per_class"].values()) > 0
