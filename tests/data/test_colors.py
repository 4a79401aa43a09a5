"""Tests for colour masks -> class ids: exact agreement with a slow reference, the tolerance and tie rules,
the inverse mapping, and ColorMaskDecoder's counts and errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.colors import ColorMaskDecoder, colors_to_ids, ids_to_colors


def slow_reference(mask: np.ndarray, palette: np.ndarray, tolerance: float, ignore_value: int = 255):
    """Loop over the palette with squared integer distances; strict < keeps the lowest index on ties."""
    pixels = mask.astype(np.int64)
    best = np.zeros(mask.shape[:2], np.int64)
    best_d2 = np.full(mask.shape[:2], np.iinfo(np.int64).max)
    for i, color in enumerate(palette.astype(np.int64)):
        d2 = ((pixels - color) ** 2).sum(axis=-1)
        closer = d2 < best_d2
        best_d2[closer], best[closer] = d2[closer], i
    far = best_d2 > tolerance**2
    best[far] = ignore_value
    return best.astype(np.uint8), int(far.sum())


def distinct_palette(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    colors = np.unique(rng.integers(0, 256, (4 * n, 3)), axis=0)
    return rng.permutation(colors)[:n].astype(np.uint8)


def jpeg_noised_mask(palette: np.ndarray, seed: int, size: int = 48) -> np.ndarray:
    """Blocks of palette colours, a few random pixels, then a JPEG round trip (quality 75)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, len(palette), (size // 8, size // 8)).repeat(8, 0).repeat(8, 1)
    rgb = palette[ids]
    rgb[rng.random((size, size)) < 0.02] = rng.integers(0, 256, 3)
    ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)  # BGR or RGB does not matter: it is noisy colours either way


@pytest.mark.parametrize("n_colors", [2, 8, 34, 200])
@pytest.mark.parametrize("tolerance", [0, 10, 30, 1000])
def test_matches_reference_on_jpeg_noised_masks(n_colors: int, tolerance: float) -> None:
    palette = distinct_palette(n_colors, seed=n_colors)
    mask = jpeg_noised_mask(palette, seed=tolerance)
    ids, unknown = colors_to_ids(mask, palette, tolerance)
    expected, expected_unknown = slow_reference(mask, palette, tolerance)
    np.testing.assert_array_equal(ids, expected)
    assert unknown == expected_unknown
    assert ids.dtype == np.uint8 and ids.shape == mask.shape[:2]


@pytest.mark.parametrize("n_colors", [1, 8, 255])
@pytest.mark.parametrize("tolerance", [7.5, 40, float("inf")])
def test_matches_reference_on_uniform_random_colours(n_colors: int, tolerance: float) -> None:
    # Colours spread over the whole cube reach every grid cell, including the ambiguous ones, and the
    # grid edges (multiples of 4 and one below) where a cell-bound slip would show first.
    rng = np.random.default_rng(n_colors)
    palette = distinct_palette(n_colors, seed=n_colors + 1)
    edges = np.array([0, 3, 4, 7, 8, 127, 128, 251, 252, 255], np.uint8)
    grid = np.stack(np.meshgrid(edges, edges, edges, indexing="ij"), -1).reshape(-1, 3)
    pixels = np.concatenate([rng.integers(0, 256, (4000, 3), dtype=np.uint8), grid, palette])
    mask = pixels[: len(pixels) // 4 * 4].reshape(4, -1, 3)
    ids, unknown = colors_to_ids(mask, palette, tolerance, ignore_value=255)
    expected, expected_unknown = slow_reference(mask, palette, tolerance)
    np.testing.assert_array_equal(ids, expected)
    assert unknown == expected_unknown


@pytest.mark.parametrize(("palette", "colour"), [
    ([[215, 176, 180], [99, 224, 34], [148, 184, 216]], [147, 188, 111]),
    ([[116, 213, 193], [106, 126, 106], [135, 59, 200]], [124, 87, 148]),
    ([[187, 46, 157], [128, 7, 237]], [175, 39, 216]),
])
def test_ties_at_grid_cell_corners(palette: list, colour: list) -> None:
    # Found by search: the colour is equidistant from two palette entries and sits exactly where one entry's
    # largest in-cell distance equals the other's smallest, the case a lookup cell must not claim to resolve.
    palette_arr = np.array(palette, np.uint8)
    around = np.stack(np.meshgrid(*(np.arange(c - 6, c + 6) for c in colour), indexing="ij"), -1)
    mask = np.concatenate([np.array(colour)[None], around.reshape(-1, 3)]).astype(np.uint8).reshape(1, -1, 3)
    expected, _ = slow_reference(mask, palette_arr, float("inf"))
    np.testing.assert_array_equal(colors_to_ids(mask, palette_arr, float("inf"))[0], expected)


def test_tolerance_boundary_is_kept() -> None:
    palette = np.array([[100, 100, 100]], np.uint8)
    # distances: 30 exactly (30, 0, 0), 30 exactly (18, 24, 0), sqrt(901) just beyond, 0
    mask = np.array([[[130, 100, 100], [118, 124, 100], [130, 101, 100], [100, 100, 100]]], np.uint8)
    ids, unknown = colors_to_ids(mask, palette, tolerance=30)
    assert ids.tolist() == [[0, 0, 255, 0]]
    assert unknown == 1
    # tolerance 0 keeps exact colours only
    assert colors_to_ids(mask, palette, tolerance=0)[0].tolist() == [[255, 255, 255, 0]]


def test_non_integer_tolerance_uses_squared_distance() -> None:
    palette = np.array([[0, 0, 0]], np.uint8)
    mask = np.array([[[10, 1, 0], [10, 2, 0]]], np.uint8)  # d2 = 101 and 104; 10.1**2 = 102.01
    assert colors_to_ids(mask, palette, tolerance=10.1)[0].tolist() == [[0, 255]]


def test_equidistant_colour_goes_to_lower_index() -> None:
    mask = np.array([[[10, 0, 0], [10, 50, 50]]], np.uint8)
    ids, _ = colors_to_ids(mask, np.array([[0, 0, 0], [20, 0, 0]], np.uint8), tolerance=1000)
    assert ids.tolist() == [[0, 0]]
    ids, _ = colors_to_ids(mask, np.array([[20, 0, 0], [0, 0, 0]], np.uint8), tolerance=1000)
    assert ids.tolist() == [[0, 0]]  # the lower *index*, not the darker colour


def test_ignore_value_and_unknown_count_are_independent() -> None:
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    mask = np.array([[[0, 0, 0], [128, 0, 0], [250, 250, 250]]], np.uint8)
    ids, unknown = colors_to_ids(mask, palette, tolerance=20, ignore_value=0)
    assert ids.tolist() == [[0, 0, 1]] and unknown == 1  # counted even though 0 is also a class id


def test_bad_arguments_raise() -> None:
    palette = np.array([[0, 0, 0]], np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        colors_to_ids(np.zeros((2, 2, 3), np.int32), palette)
    with pytest.raises(ValueError, match="tolerance"):
        colors_to_ids(np.zeros((2, 2, 3), np.uint8), palette, tolerance=-1)
    with pytest.raises(ValueError, match="palette"):
        colors_to_ids(np.zeros((2, 2, 3), np.uint8), np.zeros((256, 3), np.uint8))


def test_ids_to_colors_round_trip() -> None:
    palette = distinct_palette(34, seed=3)
    ids = np.random.default_rng(0).integers(0, 34, (20, 30)).astype(np.uint8)
    rgb = ids_to_colors(ids, palette)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    back, unknown = colors_to_ids(rgb, palette, tolerance=0)
    np.testing.assert_array_equal(back, ids)
    assert unknown == 0


def test_ids_to_colors_void() -> None:
    palette = np.array([[10, 20, 30], [40, 50, 60]], np.uint8)
    ids = np.array([[0, 1, 2, 255]], np.uint8)
    assert ids_to_colors(ids, palette, void_color=(1, 2, 3)).tolist() == [
        [[10, 20, 30], [40, 50, 60], [1, 2, 3], [1, 2, 3]]]


def test_decoder_counts_and_accepts_class_spec() -> None:
    spec = ClassSpec.from_lists(["bg", "road"], [(0, 0, 0), (128, 64, 128)])
    decoder = ColorMaskDecoder(spec, tolerance=30)
    clean = np.zeros((4, 5, 3), np.uint8)
    clean[:, 2:] = (128, 64, 128)
    np.testing.assert_array_equal(decoder(clean, "a.png"), (np.arange(5) >= 2).astype(np.uint8)[None].repeat(4, 0))
    noisy = clean.copy()
    noisy[0, :3] = (0, 255, 0)  # 3 unmatched pixels of 20
    ids = decoder(noisy, "b.png")
    assert (ids[0, :3] == 255).all()
    rgba = np.concatenate([clean, np.full((4, 5, 1), 255, np.uint8)], axis=-1)
    decoder(rgba, "c.png")
    assert (decoder.files, decoder.total_pixels, decoder.unknown_pixels, decoder.files_with_unknown) == (3, 60, 3, 1)
    assert "3 of 60" in decoder.summary()


def test_decoder_rejects_mostly_unknown_colours() -> None:
    decoder = ColorMaskDecoder(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), max_unknown_fraction=0.5)
    mask = np.full((4, 4, 3), 128, np.uint8)
    mask[0] = 0  # 4 of 16 match
    with pytest.raises(DataError, match=r"^masks/x\.png: .*mostly match no palette entry; check --classes"):
        decoder(mask, "masks/x.png")
    assert decoder.files == 0 and decoder.summary() is None
    mask[:2] = 0  # exactly half unknown: still accepted
    decoder(mask, "masks/y.png")
    assert decoder.unknown_pixels == 8


def test_decoder_rejects_single_channel_mask() -> None:
    decoder = ColorMaskDecoder(np.array([[0, 0, 0]], np.uint8))
    with pytest.raises(DataError, match=r"^m\.png: expected an 8-bit RGB"):
        decoder(np.zeros((3, 3), np.uint8), "m.png")
