"""Load: predicting 2,000 images in one call keeps memory flat (no per-image leak in the decode, model or
collate path); RSS after image 2,000 is within 10% of RSS after image 200."""

from __future__ import annotations

import os

import cv2
import numpy as np

from pixelwise.data.classes import ClassSpec
from pixelwise.inference.predictor import Predictor
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_predicting_2000_images_keeps_memory_flat(tmp_path):
    classes = ClassSpec.from_lists(["background", "thing"])
    model = create_model("unet", num_classes=2, base_filters=4, depth=2)
    save_checkpoint(tmp_path / "model.safetensors", model, CheckpointMeta.for_model(model, classes,
                                                                                     input_size=(32, 32)))
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2000):  # small and all different, as a folder of photos
        paths.append(tmp_path / f"{k:04d}.png")
        cv2.imwrite(str(paths[-1]), (rng.random((24 + k % 9, 32, 3)) * 255).astype(np.uint8))
    predictor = Predictor(tmp_path / "model.safetensors", device="cpu", precision="fp32", backend="torch")
    seen, rss = 0, {}
    for path, labels in predictor.predict_files(paths, batch_size=8, workers=0):
        seen += 1
        if seen % 500 == 0:  # labels at each image's own size
            assert labels.shape[:2] == cv2.imread(str(path)).shape[:2]
        if seen in (200, 2000):
            rss[seen] = rss_bytes()
    assert seen == 2000
    assert rss[2000] <= 1.10 * rss[200], f"RSS grew from {rss[200] / 2**20:.0f} to {rss[2000] / 2**20:.0f} MiB"
