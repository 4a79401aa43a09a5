"""Colour-mask layouts (composites, 32-class CamVid) and RLE CSV files, on fixtures written here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.formats import detect_format, open_dataset
from pixelwise.data.presets import get_preset
from pixelwise.data.rle import rle_encode

RNG = np.random.default_rng(1)


def street(h: int, w: int) -> np.ndarray:
    """A street-like label map: sky, buildings, trees, road and sidewalk bands, and a few cars."""
    sky, building, vegetation, sidewalk, road, car = 23, 11, 21, 8, 7, 26
    ids = np.full((h, w), road, np.uint8)
    horizon = int(RNG.integers(h // 3, h // 2))
    ids[:horizon] = sky
    for x in range(0, w, 48):
        ids[int(RNG.integers(10, horizon - 5)) : horizon, x : x + int(RNG.integers(24, 48))] = building
    ids[horizon - 20 : horizon, int(RNG.integers(0, w - 40)) :][:, :40] = vegetation
    ids[horizon : horizon + 30] = sidewalk
    for _ in range(2):
        y, x = int(RNG.integers(horizon + 40, h - 30)), int(RNG.integers(0, w - 60))
        ids[y : y + 28, x : x + 56] = car
    return ids


def write_jpeg(path, rgb, quality=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


def test_composite_jpeg_decodes_exactly_but_at_boundaries(tmp_path):
    palette = get_preset("cityscapes-labelids").palette
    truths = {}
    for split, n in [("train", 2), ("val", 2)]:
        for i in range(n):
            ids = street(256, 256)
            photo = RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8)
            write_jpeg(tmp_path / split / f"{i}.jpg", np.concatenate([photo, palette[ids]], axis=1))
            truths[(split, i)] = ids
    assert detect_format(tmp_path) == "composite"
    index = open_dataset(tmp_path)
    assert index.classes.num_classes == 34
    for sample in index.split("val"):
        image, got = index.reader.load(sample)
        truth = truths[("val", int(sample.image.stem))]
        assert image.shape == (256, 256, 3)
        wrong = got != truth
        assert wrong.mean() <= 0.005
        # every error lies within 2 pixels of a class boundary (the photo|mask seam counts as one)
        boundary = (cv2.Laplacian(truth.astype(np.float32), cv2.CV_32F) != 0).astype(np.uint8)
        boundary[:, 0] = 1
        edges = cv2.dilate(boundary, np.ones((5, 5), np.uint8))
        assert not (wrong & (edges == 0)).any()
    assert index.reader.image_size(index.split("val")[0]) == (256, 256)


def test_composite_odd_width_and_wrong_palette(tmp_path):
    write_jpeg(tmp_path / "train" / "a.jpg", np.zeros((10, 21, 3), np.uint8))
    index = open_dataset(tmp_path, "composite")
    with pytest.raises(DataError, match="a.jpg: composite is 21 pixels wide, an odd number"):
        index.reader.load(index.split("train")[0])
    magenta = np.zeros((10, 20, 3), np.uint8)
    magenta[:, 10:] = (255, 0, 255)
    write_jpeg(tmp_path / "train" / "a.jpg", magenta)
    with pytest.raises(DataError, match="a.jpg: .*mostly match no palette entry"):
        open_dataset(tmp_path, "composite", "camvid").reader.load(index.split("train")[0])
    with pytest.raises(ConfigError, match="tolerance=x is not a number"):
        open_dataset(tmp_path, "composite:tolerance=x")


def test_camvid32_colour_labels(tmp_path):
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nVoid,0,0,0\n")
    palette = np.array([[128, 128, 128], [128, 64, 128], [0, 0, 0]], np.uint8)
    ids = RNG.integers(0, 3, (6, 8)).astype(np.uint8)
    for split in ["train", "val"]:
        for stem in ["0001TP_006690", "0001TP_006720"]:
            (tmp_path / split).mkdir(exist_ok=True)
            (tmp_path / f"{split}_labels").mkdir(exist_ok=True)
            Image.fromarray(RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(tmp_path / split / f"{stem}.png")
            Image.fromarray(palette[ids]).save(tmp_path / f"{split}_labels" / f"{stem}_L.png")
    assert detect_format(tmp_path) == "camvid32"
    index = open_dataset(tmp_path)
    assert index.classes.names == ["Sky", "Road", "Void"]
    np.testing.assert_array_equal(index.reader.load(index.split("val")[1])[1], ids)
    (tmp_path / "classes.yaml").write_text("classes:\n- {name: sky, color: [128, 128, 128]}\n"
                                           "- {name: road, color: [128, 64, 128]}\n"
                                           "- {name: void, color: [0, 0, 0]}\nignore_index: 2\n")
    ignored = open_dataset(tmp_path).reader.load(index.split("val")[1])[1]
    np.testing.assert_array_equal(ignored, np.where(ids == 2, 255, ids))


# --------------------------------------------------------------------------------------------- RLE CSV
@pytest.fixture()
def rle_data(tmp_path):
    masks = {}
    lines = ["ImageId,EncodedPixels,ClassId"]
    for i in range(10):
        name = f"img{i}.jpg"
        write_jpeg(tmp_path / "train_images" / name, RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8))
        mask = np.zeros((5, 7), np.uint8)
        if i % 3:  # some images have no defects at all
            for value in (1, 2):
                part = (RNG.random((5, 7)) < 0.3) & (mask == 0)
                mask[part] = value
                lines.append(f"{name},{rle_encode(part)},{value}")
        masks[name] = mask
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "classes.yaml").write_text("classes:\n- {name: background, color: [0, 0, 0]}\n"
                                           "- {name: scratch, color: [255, 0, 0]}\n"
                                           "- {name: dent, color: [0, 255, 0]}\n")
    return tmp_path, masks


def test_rle_csv_merges_rows_per_image(rle_data):
    root, masks = rle_data
    assert detect_format(root) == "rle-csv"
    index = open_dataset(root)
    assert len(index.split("train")) == 9 and [s.image.name for s in index.split("val")] == ["img9.jpg"]
    for sample in index.split("train"):
        np.testing.assert_array_equal(index.reader.load(sample)[1], masks[sample.image.name])


def test_rle_csv_bad_rows(rle_data):
    root, _ = rle_data
    text = (root / "train.csv").read_text()
    (root / "train.csv").write_text(text + "ghost.jpg,1 3,1\n")
    with pytest.raises(DataError, match=r"train.csv row \d+: ImageId ghost.jpg has no image"):
        open_dataset(root)
    (root / "train.csv").write_text(text + "img0.jpg,1 3 5,1\n")
    index = open_dataset(root)
    with pytest.raises(DataError, match=r"train.csv row .*img0.jpg"):
        index.reader.load(next(s for s in index.split("train") if s.image.name == "img0.jpg"))
    with pytest.raises(ConfigError, match="order=Z is not one of F, C"):
        open_dataset(root, "rle-csv:order=Z")
