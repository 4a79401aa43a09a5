"""The decode-once cache returns exactly what the readers and transforms would, and follows file changes."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from pixelwise.data.cache import IN_USE_SECONDS, build_cache
from pixelwise.data.dataset import SegmentationDataset
from pixelwise.data.formats import open_dataset
from pixelwise.data.transforms import AugmentOptions, eval_transform, train_transform
from pixelwise.testing import TINY_MODEL
from pixelwise.training.config import TrainConfig
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
    in_use = build_cache(samples, index.reader, (32, 48), False, tmp_path / "c", progress=False)
    # The old cache was opened a moment ago, so another run may be reading it: it stays.
    assert in_use.folder != first.folder and first.folder.exists()
    assert (in_use.load(samples[0])[1] == 0).all()
    old = time.time() - IN_USE_SECONDS - 60
    os.utime(first.folder / "table.npy", (old, old))
    shutil.rmtree(in_use.folder)
    rebuilt = build_cache(samples, index.reader, (32, 48), False, tmp_path / "c", progress=False)
    assert rebuilt.folder == in_use.folder and not first.folder.exists()


def test_two_runs_building_the_same_cache_at_once(tiny_data, tmp_path):
    index = open_dataset(tiny_data)
    samples = index.split("train")
    with ThreadPoolExecutor(2) as pool:
        caches = list(pool.map(lambda _: build_cache(samples, index.reader, (32, 48), True, tmp_path, workers=1,
                                                     progress=False), range(2)))
    assert caches[0].folder == caches[1].folder
    assert [p.name for p in tmp_path.iterdir()] == [caches[0].folder.name]  # no temporary folder left behind
    image, mask = caches[1].load(samples[0])
    assert image.shape == (32, 48, 3) and mask.shape == (32, 48)


def test_training_with_and_without_cache_is_identical(tiny_data, tmp_path):
    histories = []
    for cache in (True, False):
        cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path / f"run-{cache}"), img_size=(32, 48), batch_size=4,
                          workers=0, epochs=2, progress=False, precision="fp32", model_kwargs=TINY_MODEL, cache=cache)
        histories.append([(r["train_loss"], r["val_miou"]) for r in train(cfg).history])
    assert histories[0] == histories[1]
