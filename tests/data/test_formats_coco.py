"""Tests for the coco format: COCO / crowdAI JSON annotations painted into semantic masks."""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

mask_utils = pytest.importorskip("pycocotools.mask")

from pixelwise.core.errors import ConfigError, DataError  # noqa: E402
from pixelwise.data.formats import detect_format, open_dataset  # noqa: E402
from pixelwise.data.io import write_png  # noqa: E402

H, W = 10, 12
# Sparse ids listed out of numeric order: classes follow the list (house = 1, road = 2), not the ids.
CATEGORIES = [{"id": 17, "name": "house", "supercategory": "x"}, {"id": 3, "name": "road", "supercategory": "x"}]
HOUSE, ROAD = 1, 2


def box(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[rows, cols] = 1
    return m


def polygon(rows: slice, cols: slice) -> list[list[float]]:
    """A rectangle polygon; pycocotools fills pixels [x0, x1) x [y0, y1) for integer corners."""
    x0, x1, y0, y1 = cols.start, cols.stop, rows.start, rows.stop
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def uncompressed_rle(m: np.ndarray) -> dict:
    """Column-major run lengths, starting with a run of zeros (COCO's uncompressed RLE), by hand."""
    flat = m.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def compressed_rle(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def annotations(image_id: int = 1, first_id: int = 1) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Annotations of one image, and the expected class ids with crowd=ignore and crowd=class.

    Listed smallest first so that only the area rule (not the JSON order) puts the house on the road.
    """
    house = box(slice(2, 5), slice(2, 6))      # 12 px, uncompressed RLE, lies on the road
    road = box(slice(0, 6), slice(0, 12))      # 72 px, polygon
    road2 = box(slice(7, 9), slice(8, 11))     # 6 px, compressed RLE, no area field
    crowd = box(slice(5, 9), slice(0, 2))      # 8 px crowd of houses, overlaps the road's last row
    i = first_id
    anns = [
        {"id": i, "image_id": image_id, "category_id": 17, "iscrowd": 0, "area": 12.0,
         "segmentation": uncompressed_rle(house)},
        {"id": i + 1, "image_id": image_id, "category_id": 3, "iscrowd": 0, "area": 72.0,
         "segmentation": polygon(slice(0, 6), slice(0, 12))},
        {"id": i + 2, "image_id": image_id, "category_id": 3, "iscrowd": 0, "segmentation": compressed_rle(road2)},
        {"id": i + 3, "image_id": image_id, "category_id": 17, "iscrowd": 1, "area": 8,
         "segmentation": compressed_rle(crowd)},
    ]
    expected = np.zeros((H, W), np.uint8)
    expected[road == 1] = ROAD
    expected[house == 1] = HOUSE
    expected[road2 == 1] = ROAD
    with_class = expected.copy()
    expected[crowd == 1] = 255
    with_class[crowd == 1] = HOUSE
    return anns, expected, with_class


def write_image(path: Path, height: int = H, width: int = W) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 90, np.uint8)
    if path.suffix == ".jpg":
        cv2.imwrite(str(path), image)
    else:
        write_png(path, image)


def write_json(path: Path, images: list[dict], anns: list[dict], categories: list[dict] = CATEGORIES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": anns, "categories": categories}))
    return path


def image_entry(image_id: int, name: str, height: int = H, width: int = W) -> dict:
    return {"id": image_id, "file_name": name, "height": height, "width": width}


def coco_layout(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """COCO style: train2017/ and images/val2017/ with annotations/instances_*.json."""
    anns, expected, with_class = annotations()
    write_image(root / "train2017" / "000001.png")
    write_image(root / "train2017" / "000002.png")  # no annotations: all background
    write_json(root / "annotations" / "instances_train2017.json",
               [image_entry(2, "000002.png"), image_entry(1, "000001.png")], anns)
    val_anns, _, _ = annotations(image_id=7, first_id=100)
    write_image(root / "images" / "val2017" / "000007.png")
    write_json(root / "annotations" / "instances_val2017.json", [image_entry(7, "000007.png")], val_anns)
    (root / "annotations" / "captions_train2017.json").write_text("{}")  # other COCO files are ignored
    return expected, with_class


def crowdai_layout(root: Path) -> np.ndarray:
    anns, expected, _ = annotations()
    for split in ("train", "val"):
        write_image(root / split / "images" / "000000000000.jpg")
        write_json(root / split / "annotation.json", [image_entry(1, "000000000000.jpg")], anns)
    return expected


def test_coco_layout_detected_and_painted(tmp_path):
    expected, _ = coco_layout(tmp_path)
    assert detect_format(tmp_path) == "coco"
    index = open_dataset(tmp_path)
    assert index.format == "coco"
    assert list(index.splits) == ["train", "val"]
    assert [s.image.name for s in index.split("train")] == ["000001.png", "000002.png"]
    assert index.split("val")[0].image == tmp_path / "images" / "val2017" / "000007.png"
    spec = index.classes
    assert spec.names == ["background", "house", "road"]
    assert spec.ignore_index == 255
    assert spec.palette[0].tolist() == [0, 0, 0]
    assert spec.palette[1].tolist() != [0, 0, 0]
    image, ids = index.reader.load(index.split("train")[0])
    assert image.shape == (H, W, 3)
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(index.reader.read_ids(index.split("train")[1]), np.zeros((H, W), np.uint8))
    np.testing.assert_array_equal(index.reader.read_ids(index.split("val")[0]), expected)
    # The reader travels to DataLoader workers.
    clone = pickle.loads(pickle.dumps(index.reader))
    np.testing.assert_array_equal(clone.read_ids(index.split("train")[0]), expected)


def test_crowdai_layout_detected(tmp_path):
    expected = crowdai_layout(tmp_path)
    assert detect_format(tmp_path) == "coco"  # before "folders", which also sees train/images
    index = open_dataset(tmp_path)
    assert list(index.splits) == ["train", "val"]
    sample = index.split("val")[0]
    assert sample.image == tmp_path / "val" / "images" / "000000000000.jpg"
    assert sample.mask == tmp_path / "val" / "annotation.json"
    np.testing.assert_array_equal(index.reader.load(sample)[1], expected)


def test_crowd_as_class(tmp_path):
    _, with_class = coco_layout(tmp_path)
    index = open_dataset(tmp_path, "coco:crowd=class")
    assert index.classes.ignore_index is None
    np.testing.assert_array_equal(index.reader.read_ids(index.split("train")[0]), with_class)


def test_area_ties_by_annotation_id_and_pixel_count_without_area(tmp_path):
    a = box(slice(0, 4), slice(0, 4))   # 16 px
    b = box(slice(2, 6), slice(2, 6))   # 16 px, same area: the higher id is painted later
    c = box(slice(0, 10), slice(3, 5))  # 20 px, no area field: its pixel count puts it first
    anns = [{"id": 9, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 16, "segmentation": compressed_rle(b)},
            {"id": 4, "image_id": 1, "category_id": 17, "iscrowd": 0, "area": 16, "segmentation": compressed_rle(a)},
            {"id": 1, "image_id": 1, "category_id": 17, "iscrowd": 0, "segmentation": uncompressed_rle(c)}]
    write_image(tmp_path / "images" / "a.png")
    write_json(tmp_path / "labels.json", [image_entry(1, "a.png")], anns)
    index = open_dataset(tmp_path, "coco:ann=labels.json")
    assert [s.image for s in index.split("train")] == [tmp_path / "images" / "a.png"]
    expected = np.zeros((H, W), np.uint8)
    expected[c == 1] = HOUSE
    expected[a == 1] = HOUSE
    expected[b == 1] = ROAD
    np.testing.assert_array_equal(index.reader.read_ids(index.split("train")[0]), expected)


def test_classes_yaml_replaces_names(tmp_path):
    coco_layout(tmp_path)
    (tmp_path / "classes.yaml").write_text("classes:\n  - {name: bg, color: [0, 0, 0]}\n"
                                           "  - {name: h, color: [1, 2, 3]}\n  - {name: r, color: [4, 5, 6]}\n"
                                           "ignore_index: 255\n")
    assert open_dataset(tmp_path).classes.names == ["bg", "h", "r"]
    (tmp_path / "classes.yaml").write_text("classes:\n  - {name: bg, color: [0, 0, 0]}\n")
    with pytest.raises(DataError, match="2 categories need 3 classes"):
        open_dataset(tmp_path)


def test_unknown_image_id(tmp_path):
    anns, _, _ = annotations()
    anns[2]["image_id"] = 42
    write_image(tmp_path / "train2017" / "a.png")
    path = write_json(tmp_path / "annotations" / "instances_train2017.json", [image_entry(1, "a.png")], anns)
    with pytest.raises(DataError, match=re.escape(f"{path}: annotation 3 refers to image_id 42")):
        open_dataset(tmp_path)


def test_missing_image(tmp_path):
    anns, _, _ = annotations()
    write_image(tmp_path / "train2017" / "a.png")
    path = write_json(tmp_path / "annotations" / "instances_train2017.json",
                      [image_entry(1, "a.png"), image_entry(5, "gone.png")], anns)
    with pytest.raises(DataError) as e:
        open_dataset(tmp_path)
    message = str(e.value)
    assert str(path) in message and "COCO annotation pointing at a missing image" in message
    assert "image id 5" in message and str(tmp_path / "train2017" / "gone.png") in message


def test_size_mismatch(tmp_path):
    anns, _, _ = annotations()
    write_image(tmp_path / "train" / "images" / "a.jpg", width=W - 1)
    path = write_json(tmp_path / "train" / "annotation.json", [image_entry(1, "a.jpg")], anns)
    index = open_dataset(tmp_path)
    with pytest.raises(DataError, match=re.escape(f"{path}: image 1 is {W}x{H} (WxH) in the JSON but")):
        index.reader.load(index.split("train")[0])


def test_not_coco_json(tmp_path):
    write_image(tmp_path / "train" / "images" / "a.jpg")
    path = tmp_path / "train" / "annotation.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(DataError, match=re.escape(f"{path}: not a COCO annotation file")):
        open_dataset(tmp_path)
    path.write_text("{not json")
    with pytest.raises(DataError, match=re.escape(f"{path}: not valid JSON")):
        open_dataset(tmp_path)


def test_splits_must_share_categories(tmp_path):
    crowdai_layout(tmp_path)
    val = tmp_path / "val" / "annotation.json"
    data = json.loads(val.read_text())
    data["categories"] = data["categories"][::-1]
    val.write_text(json.dumps(data))
    with pytest.raises(DataError) as e:
        open_dataset(tmp_path)
    assert str(val) in str(e.value) and str(tmp_path / "train" / "annotation.json") in str(e.value)


def test_bad_rle_and_options(tmp_path):
    anns, _, _ = annotations()
    anns[0]["segmentation"] = {"size": [H + 1, W], "counts": [0, H * W]}
    write_image(tmp_path / "train2017" / "a.png")
    write_json(tmp_path / "annotations" / "instances_train2017.json", [image_entry(1, "a.png")], anns)
    index = open_dataset(tmp_path)
    with pytest.raises(DataError, match="annotation 1: RLE size"):
        index.reader.read_ids(index.split("train")[0])
    with pytest.raises(ConfigError, match="crowd=keep is not one of"):
        open_dataset(tmp_path, "coco:crowd=keep")
    with pytest.raises(DataError, match="COCO annotation file not found"):
        open_dataset(tmp_path, "coco:ann=nope.json")


def test_without_pycocotools(tmp_path, monkeypatch):
    coco_layout(tmp_path)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    with pytest.raises(ConfigError, match=re.escape("the coco format needs pycocotools: pip install "
                                                    "'pixelwise[coco]'")):
        open_dataset(tmp_path)
