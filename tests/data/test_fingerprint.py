"""Fingerprint values on generated datasets whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.data.classes import ClassSpec
from pixelwise.data.fingerprint import fingerprint_dataset, medial_thickness, weighted_percentile
from pixelwise.data.io import write_png


def write_known_dataset(root, sizes, grey=False):
    """Images of the given sizes; class 1 = a vertical bar 3 px wide, class 2 = a 9x9 square, rest 0."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        mask = np.zeros((h, w), np.uint8)
        mask[2 : h - 2, 4:7] = 1
        mask[10:19, 20:29] = 2
        value = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
        image = np.repeat(value, 3, axis=2) if grey else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for split in ("train",) + (("val",) if i == 0 else ()):
            write_png(root / "images" / split / f"{i}.png", image)
            write_png(root / "masks" / split / f"{i}.png", mask)
    ClassSpec.from_lists(["background", "bar", "square"], [(0, 0, 0), (255, 0, 0), (0, 255, 0)]).to_yaml(
        root / "classes.yaml")
    return root


def test_sizes_channels_and_counts(tmp_path):
    fp = fingerprint_dataset(write_known_dataset(tmp_path, [(40, 60), (40, 60), (50, 80)]))
    assert fp.num_images == 3 and fp.sampled_images == 3
    assert fp.median_size == (40, 60) and fp.min_size == (40, 60) and fp.max_size == (50, 80)
    assert fp.aspect == pytest.approx(1.5)
    assert fp.channels == "rgb"
    assert fp.mean == pytest.approx((0.5, 0.5, 0.5), abs=0.02) and fp.std[0] == pytest.approx(0.289, abs=0.02)
    assert fingerprint_dataset(write_known_dataset(tmp_path / "grey", [(40, 60)], grey=True)).channels == "grey"


def test_class_shares_and_object_sizes(tmp_path):
    sizes = [(40, 60), (40, 60)]
    fp = fingerprint_dataset(write_known_dataset(tmp_path, sizes))
    bar, square = fp.classes[1], fp.classes[2]
    assert bar.pixel_share == pytest.approx(36 * 3 / 2400) and square.pixel_share == pytest.approx(81 / 2400)
    assert bar.image_share == 1.0
    assert bar.thickness_median == 3.0 and bar.thickness_p5 == 3.0
    assert square.thickness_median == 9.0
    assert bar.area_median == 108 and square.area_median == 81
    assert fp.ignore_share == 0.0


def test_sampling_spreads_over_the_dataset(tmp_path):
    fp = fingerprint_dataset(write_known_dataset(tmp_path, [(40, 60)] * 7), max_images=3)
    assert fp.num_images == 7 and fp.sampled_images == 3


def test_medial_thickness_of_a_thin_network_is_its_line_width():
    mask = np.zeros((64, 64), np.uint8)
    mask[::16, :] = 1  # a grid of 1-px lines: one connected region, thin everywhere
    mask[:, ::16] = 1
    mask = np.maximum(mask, np.roll(mask, 1, 0))  # 2 px wide ...
    mask = np.maximum(mask, np.roll(mask, 1, 1))
    mask = np.maximum(mask, np.roll(mask, 1, 0))  # ... 3 px wide
    mask = np.maximum(mask, np.roll(mask, 1, 1))
    classes, thickness = medial_thickness(mask)
    assert weighted_percentile(thickness[classes == 1], thickness[classes == 1], 50) == 3.0
