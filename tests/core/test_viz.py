"""Tests for pixelwise.core.viz: exact colours and blending, plus every plot writing a real PNG."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelwise.core.viz import colorize, overlay, plot_class_shares, plot_confusion, plot_curves, save_grid

PALETTE = np.array([[10, 20, 30], [255, 0, 0], [0, 200, 100]], dtype=np.uint8)
NAMES = ["background", "cat", "dog"]


def assert_png(path: Path) -> None:
    assert path.is_file()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size[0] > 0 and img.size[1] > 0
        img.load()  # fully decode: a truncated file fails here
    # The atomic write must not leave its temporary file behind.
    assert not Path(f"{path}.tmp.png").exists()


def sample(seed: int, size: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    truth = rng.integers(0, 2, (size, size))
    truth[:3] = 255  # void band
    pred = rng.integers(0, 3, (size, size))
    return image, truth, pred


def test_colorize_exact_colours_and_void_black() -> None:
    labels = np.array([[0, 1, 2], [-1, 255, 1]])
    rgb = colorize(labels, PALETTE)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], PALETTE)
    np.testing.assert_array_equal(rgb[1, 2], PALETTE[1])
    np.testing.assert_array_equal(rgb[1, :2], np.zeros((2, 3), dtype=np.uint8))


def test_colorize_does_not_mutate_palette() -> None:
    palette = PALETTE.copy()
    colorize(np.full((4, 4), -1), palette)
    np.testing.assert_array_equal(palette, PALETTE)


@pytest.mark.parametrize("void", [-1, 255])
def test_overlay_blend_boundary_and_void(void: int) -> None:
    alpha = 0.3
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    labels = np.full((20, 20), void)
    labels[5:15, 5:15] = 1
    out = overlay(image, labels, PALETTE, alpha=alpha)
    assert out.shape == image.shape and out.dtype == np.uint8

    # Void pixels (including those right next to the square) are untouched.
    void_mask = labels == void
    np.testing.assert_array_equal(out[void_mask], image[void_mask])

    # An interior pixel is the alpha blend of the class colour and the image.
    expected = np.rint(alpha * PALETTE[1].astype(float) + (1 - alpha) * image[10, 10].astype(float))
    assert np.abs(out[10, 10].astype(int) - expected.astype(int)).max() <= 1

    # The square's outline is drawn in the pure class colour.
    for y, x in [(5, 5), (5, 10), (14, 14), (10, 5), (10, 14)]:
        np.testing.assert_array_equal(out[y, x], PALETTE[1])
    # The input image is not modified in place.
    assert not np.array_equal(out, image)


def test_overlay_two_classes_each_outlined_in_own_colour() -> None:
    image = np.full((16, 16, 3), 128, dtype=np.uint8)
    labels = np.zeros((16, 16), dtype=np.int64)
    labels[4:12, 4:12] = 2
    out = overlay(image, labels, PALETTE, alpha=0.5)
    np.testing.assert_array_equal(out[4, 8], PALETTE[2])
    np.testing.assert_array_equal(out[0, 0], PALETTE[0])  # image border is the class-0 contour
    np.testing.assert_array_equal(out[8, 8], np.rint(0.5 * PALETTE[2] + 0.5 * 128).astype(np.uint8))


def test_overlay_size_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        overlay(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.int64), PALETTE)


@pytest.mark.parametrize("num_rows", [1, 3])
def test_save_grid_writes_png(tmp_path: Path, num_rows: int) -> None:
    rows = [sample(seed) for seed in range(num_rows)]
    path = tmp_path / "sub" / "grid.png"
    save_grid(rows, PALETTE, NAMES, path, title="epoch 3")
    assert_png(path)


def test_save_grid_all_void_has_no_legend_but_still_saves(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    void = np.full((8, 8), 255)
    path = tmp_path / "grid.png"
    save_grid([(image, void, void)], PALETTE, NAMES, str(path))
    assert_png(path)


def test_save_grid_overwrites_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "grid.png"
    path.write_bytes(b"not a png")
    save_grid([sample(0)], PALETTE, NAMES, path)
    assert_png(path)


@pytest.mark.parametrize(
    "history",
    [
        [{"epoch": 1, "train_loss": 0.9, "val_loss": None, "val_miou": None}],
        [
            {"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_miou": 0.3},
            {"epoch": 2, "train_loss": 0.7, "val_loss": math.nan, "val_miou": math.nan},
            {"epoch": 3, "train_loss": 0.5, "val_loss": 0.6, "val_miou": 0.55},
        ],
    ],
    ids=["single-epoch", "multi-epoch"],
)
def test_plot_curves_writes_png(tmp_path: Path, history: list[dict]) -> None:
    path = tmp_path / "curves.png"
    plot_curves(history, path)
    assert_png(path)


def test_plot_confusion_zero_row_without_warnings(tmp_path: Path) -> None:
    matrix = np.array([[50, 5, 0], [0, 0, 0], [3, 2, 40]])  # class 1 never occurs in the truth
    path = tmp_path / "confusion.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        plot_confusion(matrix, NAMES, path)
    assert_png(path)


def test_plot_confusion_many_classes_skips_annotations(tmp_path: Path) -> None:
    n = 25
    matrix = np.random.default_rng(0).integers(0, 100, (n, n))
    path = tmp_path / "confusion_big.png"
    plot_confusion(matrix, [f"class{i}" for i in range(n)], path)
    assert_png(path)
    # Figure size grows with the class count.
    small = tmp_path / "confusion_small.png"
    plot_confusion(np.eye(2, dtype=int), ["a", "b"], small)
    with Image.open(path) as big_img, Image.open(small) as small_img:
        assert big_img.size[0] > small_img.size[0]


def test_plot_confusion_rejects_non_square(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        plot_confusion(np.zeros((2, 3)), ["a", "b"], tmp_path / "c.png")


def test_plot_class_shares_writes_png(tmp_path: Path) -> None:
    path = tmp_path / "shares.png"
    plot_class_shares({"background": 0.7, "cat": 0.25, "dog": 0.05}, path)
    assert_png(path)
    single = tmp_path / "single.png"
    plot_class_shares({"only": 1.0}, single, title="one class")
    assert_png(single)
