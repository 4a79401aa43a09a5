"""Tests for run-length encoded masks: hand-written Kaggle examples, exact round trips, every malformed input
raising a DataError that starts with its location, and the overlap rule of merge_rles."""

from __future__ import annotations

import numpy as np
import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.rle import merge_rles, rle_decode, rle_encode

# 3x4 mask. Column-major pixel numbers (Kaggle):   Row-major pixel numbers:
#    1  4  7 10                                        1  2  3  4
#    2  5  8 11                                        5  6  7  8
#    3  6  9 12                                        9 10 11 12
MASK = np.array([[0, 1, 1, 0],
                 [0, 1, 0, 0],
                 [1, 1, 0, 0]], np.uint8)
RLE_F = "3 5"  # pixels 3..7 going down the columns
RLE_C = "2 2 6 1 9 2"  # pixels 2-3, 6, 9-10 going along the rows


def slow_encode(mask: np.ndarray, order: str) -> str:
    """Pixel-by-pixel reference."""
    out, run_start, flat = [], None, list(mask.ravel(order=order) != 0) + [False]
    for i, on in enumerate(flat):
        if on and run_start is None:
            run_start = i
        elif not on and run_start is not None:
            out += [run_start + 1, i - run_start]
            run_start = None
    return " ".join(map(str, out))


def test_kaggle_examples_by_hand() -> None:
    assert rle_encode(MASK) == RLE_F
    assert rle_encode(MASK, order="C") == RLE_C
    np.testing.assert_array_equal(rle_decode(RLE_F, (3, 4)), MASK)
    np.testing.assert_array_equal(rle_decode(RLE_C, (3, 4), order="C"), MASK)
    assert rle_decode(RLE_F, (3, 4)).dtype == np.uint8


def test_full_and_touching_runs() -> None:
    assert rle_decode("1 12", (3, 4)).all()
    assert rle_encode(np.ones((3, 4), np.uint8)) == "1 12"
    # Touching runs (2 ends at pixel 3, the next starts at 4) decode to one block and re-encode merged.
    touching = rle_decode("2 2 4 3", (3, 4))
    assert touching.ravel(order="F").tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert rle_encode(touching) == "2 5"
    assert rle_decode("12 1", (3, 4))[2, 3] == 1  # the very last pixel


@pytest.mark.parametrize("empty", ["", "   ", "nan", "NaN", float("nan"), None])
def test_empty_cells_are_empty_masks(empty) -> None:
    out = rle_decode(empty, (5, 7))
    assert out.shape == (5, 7) and out.dtype == np.uint8 and not out.any()


def test_encode_empty_and_nonbinary() -> None:
    assert rle_encode(np.zeros((4, 4), np.uint8)) == ""
    assert rle_encode(np.array([[0, 7], [255, 0]], np.uint8)) == rle_encode(np.array([[0, 1], [1, 0]]))


@pytest.mark.parametrize("order", ["F", "C"])
def test_round_trip_random_masks(order: str) -> None:
    rng = np.random.default_rng(0 if order == "F" else 1)
    for shape in [(1, 1), (1, 9), (9, 1), (7, 13), (64, 48), (101, 37)]:
        for density in [0.0, 0.02, 0.3, 0.5, 0.9, 1.0]:
            mask = (rng.random(shape) < density).astype(np.uint8)
            text = rle_encode(mask, order)
            assert text == slow_encode(mask, order)
            back = rle_decode(text, shape, order)
            np.testing.assert_array_equal(back, mask)
            assert rle_encode(back, order) == text


def test_round_trip_blocky_mask() -> None:
    mask = np.zeros((50, 60), np.uint8)
    mask[5:30, 10:25] = 1
    mask[40:, 50:] = 1
    for order in "FC":
        np.testing.assert_array_equal(rle_decode(rle_encode(mask, order), mask.shape, order), mask)


@pytest.mark.parametrize(("rle", "problem"), [
    ("1 2 x 3", "'x' is not an integer"),
    ("1.5 2", "'1.5' is not an integer"),
    ("1 99999999999999999999999", "'99999999999999999999999' is far too large"),
    ("1 2 5", "3 numbers, an odd count"),
    ("0 2", "run 1 starts at pixel 0"),
    ("1 2 -4 1", "run 2 starts at pixel -4"),
    ("1 0", "run 1 has length 0"),
    ("1 2 5 -1", "run 2 has length -1"),
    ("5 2 3 1", "run 2 starts at pixel 3, not after the end of run 1 (pixel 6)"),  # not increasing
    ("3 3 5 2", "run 2 starts at pixel 5, not after the end of run 1 (pixel 5)"),  # overlapping
    ("3 1 3 1", "run 2 starts at pixel 3"),  # repeated start
    ("10 4", "run 1 (start 10, length 4) goes past the image's 12 pixels"),
    ("13 1", "run 1 (start 13, length 1) goes past"),
    ("1 1 5 9223372036854775807", "run 2 (start 5, length 9223372036854775807) goes past"),
])
def test_malformed_rle_raises_with_location(rle: str, problem: str) -> None:
    with pytest.raises(DataError) as info:
        rle_decode(rle, (3, 4), where="train.csv row 17")
    message = str(info.value)
    assert message.startswith("train.csv row 17: ")
    assert problem in message
    assert "\n" not in message


def test_malformed_without_location_and_bad_shape() -> None:
    with pytest.raises(DataError, match=r"^RLE has 1 numbers"):
        rle_decode("4", (3, 4))
    with pytest.raises(DataError, match=r"^a\.csv row 2: image size \(0, 4\)"):
        rle_decode("1 1", (0, 4), where="a.csv row 2")
    with pytest.raises(ValueError, match="order"):
        rle_decode("1 1", (3, 4), order="K")


def test_merge_rles_later_rows_win() -> None:
    # class 1 covers pixels 1..6 (first two columns), class 2 covers pixels 4..9 (columns 2 and 3)
    merged = merge_rles([("1 6", 1), ("4 6", 2), ("", 3), (float("nan"), 4)], (3, 4))
    assert merged.tolist() == [[1, 2, 2, 0],
                               [1, 2, 2, 0],
                               [1, 2, 2, 0]]
    swapped = merge_rles([("4 6", 2), ("1 6", 1)], (3, 4))
    assert swapped[:, 1].tolist() == [1, 1, 1]
    assert merged.dtype == np.uint8


def test_merge_rles_errors_name_the_entry() -> None:
    with pytest.raises(DataError, match=r"^train\.csv image 7 \(entry 2\): RLE run 1 has length 0"):
        merge_rles([("1 2", 1), ("3 0", 2)], (3, 4), where="train.csv image 7")
    with pytest.raises(DataError, match=r"^train\.csv image 7 \(entry 1\): class value 300"):
        merge_rles([("1 2", 300)], (3, 4), where="train.csv image 7")
