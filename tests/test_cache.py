"""The decode-once cache returns exactly what the readers and transforms would, and follows file changes."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from helpers import TINY_MODEL
from pixelwise.config import TrainConfig
from pixelwise.data.cache import build_cache
from pixelwise.data.dataset import SegmentationDataset
from pixelwise.data.formats import open_dataset
from pixelwise.data.transforms import AugmentOptions, eval_transform, train_transform
from pixelwise.training.trainer import train


def test_cached_items_equal_uncached(tiny_data, tmp_path):
    index = open_dataset(tiny_data)
    for split, size, resize_mask, transform, augment in [
        ("train", (32, 48), True, train_transform((32, 48), AugmentOptions()), True),
        ("val", (32, 48), False, eval_transform((32, 48)), False),
    ]:
        samples = index.split(split)
        cache = build_cache(samples, index.reader, size, resize_mask, tmp_path, progress=False)
        plain = SegmentationDataset(samples, index.classes, transform, seed=3, augment=augment)
        cached = SegmentationDataset(samples, index.classes, transform, seed=3, augment=augment, reader=cache)
        for dataset in (plain, cached):
            dataset.set_epoch(2)
        for i in range(len(samples)):
            a, b = plain[i], cached[i]
            assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
        if split == "val":
            assert cached[0]["mask"].shape == (48, 64)  # evaluation keeps full-size masks


def test_changed_file_rebuilds_and_removes_stale_cache(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    index = open_dataset(data)
    samples = index.split("val")
    first = build_cache(samples, index.reader, (32, 48), False, tmp_path / "c", progress=False)
    again = build_cache(samples, index.reader, (32, 48), False, tmp_path / "c", progress=False)
    assert again.folder == first.folder
    mask_path = samples[0].mask
    new_mask = np.zeros((48, 64), np.uint8)
    Image.fromarray(new_mask).save(mask_path)
    os.utime(mask_path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    rebuilt = build_cache(samples, index.reader, (32, 48), False, tmp_path / "c", progress=False)
    assert rebuilt.folder != first.folder and not first.folder.exists()
    assert (rebuilt.load(samples[0])[1] == 0).all()


def test_training_with_and_without_cache_is_identical(tiny_data, tmp_path):
    histories = []
    for cache in (True, False):
        cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path / f"run-{cache}"), img_size=(32, 48), batch_size=4,
                          workers=0, epochs=2, progress=False, precision="fp32", model_kwargs=TINY_MODEL, cache=cache)
        histories.append([(r["train_loss"], r["val_miou"]) for r in train(cfg).history])
    assert histories[0] == histories[1]
