"""datasets inspect / convert and class weights, on small fixtures written here."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from pixelwise.core.errors import ConfigError
from pixelwise.data.checks import class_weights, scan_dataset
from pixelwise.data.convert import convert_dataset
from pixelwise.data.formats import open_dataset
from pixelwise.data.inspect import inspect_dataset
from pixelwise.testing import run_main


@pytest.fixture()
def camvid_like(tmp_path):
    """Two train and one val image; class 11 is void. Known pixel counts per class."""
    masks = {"train": [np.array([[0, 0, 3, 3], [3, 3, 11, 11]], np.uint8), np.array([[1, 1, 1, 3]] * 2, np.uint8)],
             "val": [np.array([[8, 8, 3, 3]] * 2, np.uint8)]}
    for split, arrays in masks.items():
        for i, mask in enumerate(arrays):
            for folder, array in [(split, np.full((2, 4, 3), 60 * i, np.uint8)), (f"{split}annot", mask)]:
                (tmp_path / folder).mkdir(exist_ok=True)
                Image.fromarray(array).save(tmp_path / folder / f"f{i}.png")
    return tmp_path


def test_inspect_counts_shares_and_problems(camvid_like):
    report = inspect_dataset(camvid_like)
    assert report.format == "camvid" and report.problems == []
    train = report.splits["train"]
    assert train.class_pixels.tolist() == [2, 6, 0, 6, 0, 0, 0, 0, 0, 0, 0, 2]
    assert train.sizes == {(2, 4): 2}
    text = report.format_text()
    assert "road" in text and "37.5%" in text  # 6 of 16 train pixels
    Image.fromarray(np.full((2, 4), 20, np.uint8)).save(camvid_like / "valannot" / "f0.png")
    (camvid_like / "train" / "f1.png").write_bytes(b"not a png")
    report = inspect_dataset(camvid_like)
    assert len(report.problems) == 2
    assert any("f1.png" in p for p in report.problems) and any("mask value 20" in p for p in report.problems)


def test_inspect_cli_strict_exit_code(camvid_like, tmp_path):
    ok = run_main("datasets", "inspect", str(camvid_like), "--strict", "--plot", str(tmp_path / "shares.png"))
    assert ok.returncode == 0 and "no problems found" in ok.stdout and (tmp_path / "shares.png").is_file()
    Image.fromarray(np.full((3, 4), 1, np.uint8)).save(camvid_like / "trainannot" / "f0.png")
    bad = run_main("datasets", "inspect", str(camvid_like), "--strict")
    assert bad.returncode == 1 and "1 problem(s)" in bad.stdout and "must match" in bad.stdout
    assert run_main("datasets", "inspect", str(camvid_like)).returncode == 0


def test_median_frequency_weights(camvid_like):
    index = open_dataset(camvid_like)
    scan = scan_dataset(index.split("train"), index.classes)
    weights = class_weights(scan)
    # freq: sky 2/8, building 6/8, road 6/16 -> median 0.375 -> 1.5, 0.5, 1.0; absent classes 0
    assert weights[:4] == [1.5, 0.5, 0.0, 1.0] and weights[4:] == [0.0] * 7
    inverse = class_weights(scan, "inverse")
    assert inverse[0] > inverse[3] == inverse[1] and np.isclose(np.mean([w for w in inverse if w]), 1.0)


def test_convert_to_folders_round_trips(camvid_like, tmp_path):
    result = convert_dataset(camvid_like, tmp_path / "out")
    assert result.images == 3
    converted = open_dataset(tmp_path / "out")
    assert converted.format == "folders" and converted.classes == open_dataset(camvid_like).classes
    for split in ["train", "val"]:
        for a, b in zip(open_dataset(camvid_like).split(split), converted.split(split), strict=True):
            assert a.image.read_bytes() == b.image.read_bytes()  # image copied byte for byte
            np.testing.assert_array_equal(converted.reader.load(b)[1], open_dataset(camvid_like).reader.load(a)[1])
    with pytest.raises(ConfigError, match="already holds files"):
        convert_dataset(camvid_like, tmp_path / "out")


def test_convert_to_rle_csv_round_trips(camvid_like, tmp_path):
    shutil.rmtree(camvid_like / "val")
    shutil.rmtree(camvid_like / "valannot")
    result = convert_dataset(camvid_like, tmp_path / "rle", to="rle-csv")
    assert result.ignored_as_background == 2
    (tmp_path / "rle" / "classes.yaml").write_text((tmp_path / "rle" / "classes.yaml").read_text()
                                                   .replace("ignore_index: 11\n", ""))
    back = open_dataset(tmp_path / "rle")
    assert back.format == "rle-csv"
    ids = back.reader.load(next(s for s in back.split("train") if s.image.stem == "f0"))[1]
    assert ids.tolist() == [[0, 0, 3, 3], [3, 3, 0, 0]]  # void became background
