"""Tests for pixelwise.data.formats: every layout, auto-detection and the errors naming the culprit."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import detect_format, open_dataset
from pixelwise.data.io import write_png

CLASSES_YAML = "classes:\n  - {name: bg, color: [0, 0, 0]}\n  - {name: fg, color: [255, 255, 255]}\n"


def image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, np.full((4, 6, 3), 100, np.uint8))
    return path


def mask(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, np.zeros((4, 6), np.uint8))
    return path


def pair(image_dir: Path, mask_dir: Path, stem: str) -> None:
    image(image_dir / f"{stem}.png")
    mask(mask_dir / f"{stem}.png")


def with_classes(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.yaml").write_text(CLASSES_YAML)
    return root


def stems(samples) -> list[str]:
    return [s.image.stem for s in samples]


def test_folders_images_split_layout(tmp_path):
    root = with_classes(tmp_path / "d")
    for s in ("a", "b"):
        pair(root / "images" / "train", root / "masks" / "train", s)
    pair(root / "images" / "val", root / "masks" / "val", "c")
    index = open_dataset(root)
    assert index.format == "folders"
    assert index.classes.names == ["bg", "fg"]
    assert set(index.splits) == {"train", "val"}
    assert stems(index.split("train")) == ["a", "b"]
    assert stems(index.split("val")) == ["c"]
    sample = index.split("train")[0]
    assert sample.image == root / "images" / "train" / "a.png"
    assert sample.mask == root / "masks" / "train" / "a.png"


def test_folders_split_images_layout(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "train" / "images", root / "train" / "masks", "x1")
    pair(root / "val" / "images", root / "val" / "masks", "y1")
    pair(root / "test" / "images", root / "test" / "masks", "z1")
    index = open_dataset(root)
    assert index.format == "folders"
    assert stems(index.split("train")) == ["x1"]
    assert stems(index.split("val")) == ["y1"]
    assert stems(index.split("test")) == ["z1"]
    assert index.split("test")[0].mask == root / "test" / "masks" / "z1.png"


def test_folders_list_files_layout(tmp_path):
    root = with_classes(tmp_path / "d")
    for s in ("a", "b", "c", "d", "unused"):
        pair(root / "images", root / "masks", s)
    (root / "train.txt").write_text("a\nc.png\n\n")
    (root / "val.txt").write_text("  b  \nd\n")
    index = open_dataset(root)
    assert index.format == "folders"
    assert set(index.splits) == {"train", "val"}
    assert stems(index.split("train")) == ["a", "c"]
    assert stems(index.split("val")) == ["b", "d"]


def test_folders_without_split_holds_out_every_tenth(tmp_path):
    root = with_classes(tmp_path / "d")
    names = [f"img{i:02d}" for i in range(25)]
    for s in names:
        pair(root / "images", root / "masks", s)
    index = open_dataset(root)
    assert stems(index.split("val")) == ["img09", "img19"]
    assert stems(index.split("train")) == [n for n in names if n not in ("img09", "img19")]


def test_folders_mixed_extensions_pair_by_stem(tmp_path):
    root = with_classes(tmp_path / "d")
    (root / "images" / "train").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "train" / "a.jpg"), np.zeros((4, 6, 3), np.uint8))
    mask(root / "masks" / "train" / "a.png")
    index = open_dataset(root)
    assert index.split("train")[0].image.name == "a.jpg"
    assert index.split("train")[0].mask.name == "a.png"


def test_camvid_layout_detected_with_camvid_preset(tmp_path):
    root = tmp_path / "camvid"
    pair(root / "train", root / "trainannot", "0001TP_006690")
    pair(root / "train", root / "trainannot", "0001TP_006720")
    pair(root / "val", root / "valannot", "0016E5_07959")
    assert detect_format(root) == "camvid"
    index = open_dataset(root)
    assert index.format == "camvid"
    assert index.classes.num_classes == 11
    assert index.classes.ignore_index == 11
    assert stems(index.split("train")) == ["0001TP_006690", "0001TP_006720"]
    assert index.split("val")[0].mask == root / "valannot" / "0016E5_07959.png"
    assert "test" not in index.splits


def test_camvid_classes_yaml_beside_data_wins_over_preset(tmp_path):
    root = with_classes(tmp_path / "camvid")
    pair(root / "train", root / "trainannot", "a")
    assert open_dataset(root).classes.names == ["bg", "fg"]


def test_explicit_classes_override(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    assert open_dataset(root, classes="binary").classes.names == ["background", "foreground"]
    spec = ClassSpec.from_lists(["x", "y", "z"])
    assert open_dataset(root, classes=spec).classes is spec


def test_explicit_format_skips_detection(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    assert open_dataset(root, format="folders").format == "folders"


def test_missing_data_folder(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(root)) + r": data folder not found"):
        open_dataset(root)


def test_data_path_is_a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(DataError, match="data folder not found"):
        open_dataset(path)


def test_unrecognised_layout(tmp_path):
    root = with_classes(tmp_path / "d")
    image(root / "pictures" / "a.png")
    with pytest.raises(DataError, match=re.escape(str(root)) + r": no dataset layout recognised"):
        open_dataset(root)


def test_image_without_mask_names_image(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    image(root / "images" / "train" / "lonely.png")
    lonely = root / "images" / "train" / "lonely.png"
    with pytest.raises(DataError, match=re.escape(str(lonely)) + r": image has no mask .*\(1 such images\)"):
        open_dataset(root)


def test_mask_without_image_names_mask(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    orphan = mask(root / "masks" / "train" / "orphan.png")
    with pytest.raises(DataError, match=re.escape(str(orphan)) + r": mask has no image"):
        open_dataset(root)


def test_listed_stem_without_image_names_stem(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images", root / "masks", "a")
    (root / "train.txt").write_text("a\nghost\n")
    with pytest.raises(DataError, match=r"'ghost' is listed in a split file but has no image \(1 missing\)"):
        open_dataset(root)


def test_listed_stem_without_mask_names_image(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images", root / "masks", "a")
    image(root / "images" / "b.png")
    (root / "val.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=re.escape(str(root / "images" / "b.png")) + ": image has no mask"):
        open_dataset(root)


def test_empty_split_names_split_and_found_splits(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    pair(root / "images" / "train", root / "masks" / "train", "b")
    pair(root / "images" / "val", root / "masks" / "val", "c")
    index = open_dataset(root)
    expected = r"split 'test' is empty or missing \(splits found: train \(2\), val \(1\)\)"
    with pytest.raises(DataError, match=expected):
        index.split("test")


def test_unknown_format_is_config_error(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images" / "train", root / "masks" / "train", "a")
    with pytest.raises(ConfigError, match=r"unknown --format 'voc'"):
        open_dataset(root, format="voc")


def test_folders_without_classes_yaml(tmp_path):
    root = tmp_path / "d"
    pair(root / "images" / "train", root / "masks" / "train", "a")
    with pytest.raises(DataError, match=re.escape(str(root)) + r": no classes.yaml found"):
        open_dataset(root)


def test_folders_with_no_pairs_at_all(tmp_path):
    root = with_classes(tmp_path / "d")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    with pytest.raises(DataError, match=r"no image/mask pairs found in the folders layout"):
        open_dataset(root)


def test_list_file_with_dotted_stems(tmp_path):
    root = with_classes(tmp_path / "d")
    pair(root / "images", root / "masks", "frame.001")
    pair(root / "images", root / "masks", "frame.002")
    (root / "train.txt").write_text("frame.001\n")
    (root / "val.txt").write_text("frame.002.png\n")
    index = open_dataset(root)
    assert stems(index.split("train")) == ["frame.001"]
    assert stems(index.split("val")) == ["frame.002"]
