"""Tests for pixelwise.core.metrics: a hand-computed confusion matrix and every metric derived from it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist

from pixelwise.core.metrics import ConfusionMatrix, format_table

NAMES = ["road", "car", "boat"]

# 3 classes; "boat" (2) is in neither truth nor prediction (its only prediction is on an ignored pixel).
TARGET = torch.tensor([[0, 0, 0, 1], [1, -1, -1, 0]])
PREDICTION = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 0]])
# truth 0 -> predicted 0, 0, 1, 0 ; truth 1 -> predicted 1, 0 ; two ignored pixels
EXPECTED_MAT = [[3, 1, 0], [1, 1, 0], [0, 0, 0]]


def example() -> ConfusionMatrix:
    cm = ConfusionMatrix(3, NAMES)
    cm.update(PREDICTION, TARGET)
    return cm


def test_matrix_exact():
    cm = example()
    assert cm.mat.dtype == torch.int64
    assert cm.mat.tolist() == EXPECTED_MAT


def test_per_class_values():
    per = example().compute()["per_class"]
    assert list(per) == NAMES
    # road: tp 3, truth 4, predicted 4 -> IoU 3/5, Dice 6/8, accuracy 3/4
    assert per["road"]["iou"] == pytest.approx(3 / 5)
    assert per["road"]["dice"] == pytest.approx(6 / 8)
    assert per["road"]["accuracy"] == pytest.approx(3 / 4)
    assert per["road"]["pixels"] == 4
    # car: tp 1, truth 2, predicted 2 -> IoU 1/3, Dice 2/4, accuracy 1/2
    assert per["car"]["iou"] == pytest.approx(1 / 3)
    assert per["car"]["dice"] == pytest.approx(1 / 2)
    assert per["car"]["accuracy"] == pytest.approx(1 / 2)
    assert per["car"]["pixels"] == 2
    assert per["boat"] == {"iou": None, "dice": None, "accuracy": None, "pixels": 0}


def test_summary_values_exclude_absent_class():
    m = example().compute()
    assert m["miou"] == pytest.approx((3 / 5 + 1 / 3) / 2)
    assert m["mean_dice"] == pytest.approx((6 / 8 + 1 / 2) / 2)
    assert m["pixel_accuracy"] == pytest.approx(4 / 6)
    assert m["mean_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)


def test_class_only_predicted_counts_in_miou_but_not_mean_accuracy():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 0, 2, 1]), torch.tensor([0, 0, 0, 1]))
    m = cm.compute()
    assert cm.mat.tolist() == [[2, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert m["per_class"]["2"] == {"iou": 0.0, "dice": 0.0, "accuracy": None, "pixels": 0}
    assert m["miou"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["mean_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["pixel_accuracy"] == pytest.approx(3 / 4)


def test_default_names_are_indices():
    assert list(ConfusionMatrix(2).compute()["per_class"]) == ["0", "1"]


def test_empty_matrix_gives_nan_summaries():
    m = ConfusionMatrix(2).compute()
    assert math.isnan(m["miou"]) and math.isnan(m["pixel_accuracy"]) and math.isnan(m["mean_accuracy"])
    assert m["per_class"]["0"]["iou"] is None


def test_target_out_of_range_is_ignored():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 5, -1]))
    assert cm.mat.tolist() == [[1, 0], [0, 0]]


def test_accumulating_two_updates_equals_one_on_concatenation():
    gen = torch.Generator().manual_seed(0)
    t1, p1 = torch.randint(-1, 4, (2, 5, 7), generator=gen), torch.randint(0, 4, (2, 5, 7), generator=gen)
    t2, p2 = torch.randint(-1, 4, (1, 3, 6), generator=gen), torch.randint(0, 4, (1, 3, 6), generator=gen)
    split = ConfusionMatrix(4)
    split.update(p1, t1)
    split.update(p2, t2)
    whole = ConfusionMatrix(4)
    whole.update(torch.cat([p1.flatten(), p2.flatten()]), torch.cat([t1.flatten(), t2.flatten()]))
    assert torch.equal(split.mat, whole.mat)
    assert int(split.mat.sum()) == int((t1 >= 0).sum() + (t2 >= 0).sum())
    assert split.compute() == whole.compute()


def test_uint8_and_int32_inputs():
    cm = ConfusionMatrix(3)
    cm.update(PREDICTION.to(torch.uint8), TARGET.to(torch.int32))
    assert cm.mat.tolist() == EXPECTED_MAT


def test_format_table_lists_classes_and_miou():
    text = format_table(example().compute())
    lines = text.splitlines()
    assert lines[0].split() == ["class", "IoU", "Dice", "Acc", "pixels"]
    for name in NAMES:
        assert any(line.startswith(name) for line in lines)
    road = next(line for line in lines if line.startswith("road"))
    assert road.split() == ["road", "60.00%", "75.00%", "75.00%", "4"]
    boat = next(line for line in lines if line.startswith("boat"))
    assert boat.split() == ["boat", "-", "-", "-", "0"]
    miou = next(line for line in lines if line.startswith("mIoU"))
    assert miou.split() == ["mIoU", "46.67%", "62.50%"]
    assert "pixel accuracy  66.67%" in text
    assert "mean class accuracy  62.50%" in text


def test_all_reduce_is_noop_without_distributed():
    assert not (dist.is_available() and dist.is_initialized())
    cm = example()
    before = cm.mat.clone()
    cm.all_reduce()
    assert torch.equal(cm.mat, before)
    assert cm.mat.device.type == "cpu"
