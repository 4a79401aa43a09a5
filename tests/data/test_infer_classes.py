"""Classes inferred from the masks of a ``folders`` dataset without classes.yaml (pixelwise.data.infer_classes):
what is inferred, what is refused with one line, and a run that trains on such data and resumes from its
own config.yaml."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec, default_palette, load_classes
from pixelwise.data.formats import open_dataset
from pixelwise.data.infer_classes import MAX_MASKS_READ, infer_classes
from pixelwise.data.inspect import inspect_dataset
from pixelwise.data.io import write_png
from pixelwise.data.presets import get_preset
from pixelwise.data.sample import SampleReader
from pixelwise.testing import TINY_MODEL, run_main

RNG = np.random.default_rng(0)


def write_folders(root: Path, masks: list[np.ndarray]) -> Path:
    """A folders dataset (images/, masks/, no classes.yaml) with one image per mask; every 10th is ``val``."""
    for i, mask in enumerate(masks):
        write_png(root / "images" / f"{i:03d}.png", np.full((*mask.shape[:2], 3), 90, np.uint8))
        write_png(root / "masks" / f"{i:03d}.png", mask)
    return root


def index_masks(values: list[int], count: int = 4, shape: tuple[int, int] = (8, 10)) -> list[np.ndarray]:
    """``count`` masks that together hold exactly ``values`` (each mask holds all of them)."""
    masks = []
    for _ in range(count):
        mask = RNG.choice(np.array(values, np.uint8), size=shape)
        mask.flat[: len(values)] = values
        masks.append(mask)
    return masks


def jpeg_smeared(mask: np.ndarray) -> np.ndarray:
    """The mask after a round trip through JPEG, as masks saved by photo tools are."""
    ok, data = cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    flag = cv2.IMREAD_COLOR if mask.ndim == 3 else cv2.IMREAD_GRAYSCALE
    return cv2.imdecode(data, flag)


def refusal(root: Path) -> str:
    with pytest.raises(DataError) as caught:
        open_dataset(root)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{root}: no classes.yaml found, and ")
    return message


def test_binary_0_255_masks_are_the_binary_255_preset(tmp_path):
    index = open_dataset(write_folders(tmp_path / "d", index_masks([0, 255], count=5)))
    assert index.classes == get_preset("binary-255")
    assert index.classes_inferred
    assert index.notes == ["classes: inferred from 5 masks: background, foreground (values 0/255); "
                           "write a classes.yaml to name them"]
    ids = SampleReader(index.classes).read_ids(index.split("train")[0])
    assert set(np.unique(ids).tolist()) == {0, 1}


def test_binary_0_1_masks_are_the_binary_preset(tmp_path):
    index = open_dataset(write_folders(tmp_path / "d", index_masks([0, 1])))
    assert index.classes == get_preset("binary")
    assert "(values 0/1)" in index.notes[0]


def test_one_bit_pngs_read_as_0_1(tmp_path):
    from PIL import Image

    root = write_folders(tmp_path / "d", index_masks([0, 1], count=2))
    for i, mask in enumerate(index_masks([0, 1], count=2)):
        Image.fromarray(mask.astype(bool)).convert("1").save(root / "masks" / f"{i:03d}.png")
    assert open_dataset(root).classes == get_preset("binary")


def test_index_masks_with_gaps_keep_their_values(tmp_path):
    index = open_dataset(write_folders(tmp_path / "d", index_masks([0, 1, 2, 5])))
    spec = index.classes
    assert spec.names == ["class_0", "class_1", "class_2", "class_5"]
    assert spec.values == [0, 1, 2, 5] and spec.ignore_index is None
    assert spec.palette.tolist() == [list(c) for c in default_palette(4)]
    assert "(values 0/1/2/5)" in index.notes[0]
    mask_file = index.split("train")[0].mask
    stored = cv2.imread(str(mask_file), cv2.IMREAD_UNCHANGED)
    ids = SampleReader(spec).read_ids(index.split("train")[0])
    assert (ids[stored == 5] == 3).all() and (ids[stored == 2] == 2).all()


def test_index_masks_0_to_n_need_no_values(tmp_path):
    spec = open_dataset(write_folders(tmp_path / "d", index_masks([0, 1, 2]))).classes
    assert spec.names == ["class_0", "class_1", "class_2"] and spec.values is None


def test_255_beside_0_to_k_is_ignore(tmp_path):
    index = open_dataset(write_folders(tmp_path / "d", index_masks([0, 1, 2, 255])))
    spec = index.classes
    assert spec.names == ["class_0", "class_1", "class_2"]
    assert spec.ignore_index == 255 and spec.values is None
    assert "255 read as ignore" in index.notes[0]
    sample = index.split("train")[0]
    stored = cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED)
    ids = SampleReader(spec).read_ids(sample)
    assert (ids[stored == 255] == 255).all() and (ids[stored == 2] == 2).all()


def test_binary_with_255_as_ignore(tmp_path):
    spec = open_dataset(write_folders(tmp_path / "d", index_masks([0, 1, 255]))).classes
    assert spec.names == ["background", "foreground"] and spec.ignore_index == 255


def test_255_beside_values_with_gaps_is_refused(tmp_path):
    message = refusal(write_folders(tmp_path / "d", index_masks([0, 128, 255])))
    assert "values 0/128/255" in message and "is 255 a class or the ignore value?" in message


def test_a_single_value_is_refused(tmp_path):
    message = refusal(write_folders(tmp_path / "d", [np.zeros((8, 10), np.uint8)] * 3))
    assert "only the value 0" in message


def test_jpeg_smeared_binary_masks_are_refused(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    cv2.circle(mask, (16, 16), 9, 255, -1)
    message = refusal(write_folders(tmp_path / "d", [jpeg_smeared(mask)] * 3))
    assert "the masks hold more than 32 values" in message and "JPEG-compressed" in message
    assert message.endswith("write a classes.yaml (and check the masks: they should hold class ids)")


def test_exact_colour_masks_are_refused_as_unreadable_here(tmp_path):
    """The folders layout reads index masks only (a colour mask file is an error even with a classes.yaml),
    so exact colours are counted and refused with what to do instead."""
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 200, 30]], np.uint8)
    masks = [palette[m] for m in index_masks([0, 1, 2])]
    message = refusal(write_folders(tmp_path / "d", masks))
    assert "colour images (3 colours), which this layout does not read" in message
    assert "convert the masks to index PNGs" in message


def test_jpeg_smeared_colour_masks_are_refused(tmp_path):
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)
    ids = np.zeros((48, 48), np.uint8)
    ids[8:30, 5:40], ids[20:44, 25:45], ids[30:40, 2:20] = 1, 2, 3
    message = refusal(write_folders(tmp_path / "d", [jpeg_smeared(palette[ids])] * 2))
    assert "more than 32 colours" in message and "JPEG-compressed colour masks" in message
    assert " in 1 mask read)" in message  # the first mask already says enough; the rest are not read


def test_classes_yaml_or_classes_flag_wins_over_inference(tmp_path):
    root = write_folders(tmp_path / "d", index_masks([0, 255]))
    index = open_dataset(root, classes="binary-255")
    assert not index.classes_inferred and index.notes == []
    ClassSpec(classes=ClassSpec.from_lists(["a", "b"]).classes, values=[0, 255]).to_yaml(root / "classes.yaml")
    index = open_dataset(root)
    assert index.classes.names == ["a", "b"] and not index.classes_inferred


def test_a_bounded_sample_spread_over_every_split_is_read(tmp_path, monkeypatch):
    """Masks of a large set are read evenly spread, not just the first ones; all splits take part."""
    from pixelwise.data import infer_classes as module

    masks = [tmp_path / f"{i:04d}.png" for i in range(1000)]
    seen: list[Path] = []

    def fake_values(path: Path) -> tuple[np.ndarray, bool]:
        seen.append(path)
        return np.array([0, 1, 255] if int(path.stem) >= 900 else [0, 1]), False

    monkeypatch.setattr(module, "read_mask_values", fake_values)
    inferred = infer_classes(masks, tmp_path)
    assert inferred.spec.ignore_index == 255  # 255 only in the last tenth: found
    assert len(seen) == MAX_MASKS_READ and seen[0] == masks[0] and seen[-1] == masks[995]
    assert inferred.note.startswith(f"classes: inferred from {MAX_MASKS_READ} masks")


def test_inspect_shows_the_note(tmp_path):
    root = write_folders(tmp_path / "d", index_masks([0, 255]))
    report = inspect_dataset(root, workers=0)
    assert any(w.startswith("classes: inferred from 4 masks") for w in report.warnings)
    assert "warning: classes: inferred from 4 masks" in report.format_text()


TRAIN = ["--epochs", "1", "--img-size", "16x16", "--batch-size", "4", "--workers", "0", "--no-progress",
         "--device", "cpu", "--precision", "fp32", *[f"--model-option={k}={v}" for k, v in TINY_MODEL.items()]]


def test_train_infers_classes_and_the_run_reproduces_them(tmp_path):
    masks = []
    for _ in range(10):
        mask = np.zeros((16, 16), np.uint8)
        cv2.circle(mask, (int(RNG.integers(5, 11)), int(RNG.integers(5, 11))), 4, 255, -1)
        masks.append(mask)
    data, run = write_folders(tmp_path / "data", masks), tmp_path / "run"
    result = run_main("train", "--data", str(data), "--out", str(run), *TRAIN)
    assert result.returncode == 0, result.stderr
    assert "classes: inferred from 10 masks: background, foreground (values 0/255)" in result.stdout
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["classes"] == str(run / "classes.yaml")
    assert load_classes(run / "classes.yaml") == get_preset("binary-255")

    resumed = run_main("train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "classes: inferred" not in resumed.stdout  # the run's classes.yaml was read, nothing inferred
    with (run / "metrics.csv").open() as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
