"""Tests for pixelwise.data.synthetic: seeded scenes, colour ambiguity between classes, dataset writing."""

from __future__ import annotations

import numpy as np

from pixelwise.data.classes import load_classes
from pixelwise.data.formats import open_dataset
from pixelwise.data.io import read_image, read_mask
from pixelwise.data.synthetic import BUILDING, CLASSES, ROAD, SKY, make_scene, write_dataset

H, W = 48, 64


def scenes(n: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    return [make_scene(np.random.default_rng(seed), H, W) for seed in range(n)]


def test_make_scene_is_deterministic_for_a_seed():
    a_img, a_mask = make_scene(np.random.default_rng(7), H, W)
    b_img, b_mask = make_scene(np.random.default_rng(7), H, W)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    c_img, _ = make_scene(np.random.default_rng(8), H, W)
    assert not np.array_equal(a_img, c_img)


def test_make_scene_types_shapes_and_values():
    image, mask = make_scene(np.random.default_rng(0), H, W)
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    assert CLASSES.num_classes == 6
    assert int(mask.max()) < 6


def test_every_class_appears_over_20_scenes():
    seen = set()
    for _, mask in scenes():
        assert int(mask.max()) < 6
        seen |= set(np.unique(mask).tolist())
    assert seen == set(range(6))


def test_sky_on_top_and_ground_at_the_bottom():
    for _, mask in scenes(5):
        assert (mask[0] == SKY).mean() > 0.5
        assert set(np.unique(mask[-1]).tolist()) <= {2, 3, 5}  # road, pavement, car


def test_colour_alone_does_not_decide_the_class():
    means = []
    for image, mask in scenes():
        means.append({c: image[mask == c].astype(np.float64).mean(0) for c in np.unique(mask).tolist()})
    overlaps = [
        (i, j, other)
        for i, a in enumerate(means) if ROAD in a
        for j, b in enumerate(means) if j != i
        for other in (SKY, BUILDING) if other in b and np.all(np.abs(a[ROAD] - b[other]) <= 20)
    ]
    assert overlaps, "road colours never come near sky/building colours of another scene"


def test_write_dataset_files_and_classes(tmp_path):
    root = write_dataset(tmp_path / "data", n_train=3, n_val=2, height=H, width=W, seed=1)
    assert root == tmp_path / "data"
    train_images = sorted(p.name for p in (root / "images" / "train").iterdir())
    assert train_images == ["train_0000.png", "train_0001.png", "train_0002.png"]
    assert sorted(p.name for p in (root / "masks" / "val").iterdir()) == ["val_0000.png", "val_0001.png"]
    assert len(list(root.rglob("*.png"))) == 10
    assert not list(root.rglob("*.tmp.png"))
    assert load_classes(root / "classes.yaml") == CLASSES
    index = open_dataset(root)
    assert index.format == "folders"
    assert len(index.split("train")) == 3 and len(index.split("val")) == 2


def test_write_dataset_matches_make_scene(tmp_path):
    root = write_dataset(tmp_path / "data", n_train=2, n_val=1, height=H, width=W, seed=5)
    rng = np.random.default_rng(5)
    for name in ("train/train_0000", "train/train_0001", "val/val_0000"):
        image, mask = make_scene(rng, H, W)
        np.testing.assert_array_equal(read_image(root / "images" / f"{name}.png"), image)
        np.testing.assert_array_equal(read_mask(root / "masks" / f"{name}.png"), mask)


def test_write_dataset_second_call_is_a_noop(tmp_path):
    root = write_dataset(tmp_path / "data", n_train=2, n_val=1, height=H, width=W, seed=0)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert len(before) == 3 * 2 + 1 + 1  # pngs, classes.yaml, completion marker
    again = write_dataset(tmp_path / "data", n_train=2, n_val=1, height=H, width=W, seed=0)
    assert again == root
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert after == before


def test_write_dataset_with_fewer_images_leaves_no_stale_files(tmp_path):
    write_dataset(tmp_path / "data", n_train=4, n_val=1, height=24, width=32, seed=0)
    root = write_dataset(tmp_path / "data", n_train=2, n_val=1, height=24, width=32, seed=0)
    assert len(open_dataset(root).split("train")) == 2
