"""The field's dataset layouts (Cityscapes, Oxford pets, CARLA) on fixtures written here, checked pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.formats import detect_format, open_dataset, parse_format
from pixelwise.data.label_tables import CITYSCAPES_LABELS

RNG = np.random.default_rng(0)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def photo(h=6, w=8):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ Cityscapes
@pytest.fixture()
def cityscapes(tmp_path):
    ids = np.array([[7, 8, 26, 0], [24, 33, 4, 11]], np.uint8)  # road, sidewalk, car, unlabeled / person, ...
    for split, city in [("train", "aachen"), ("val", "lindau")]:
        name = f"{city}_000000_000019"
        save(tmp_path / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", photo(2, 4))
        save(tmp_path / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", ids)
    return tmp_path, ids


def test_cityscapes_targets(cityscapes):
    root, ids = cityscapes
    assert detect_format(root) == "cityscapes"
    train_id = {lb.id: lb.trainId for lb in CITYSCAPES_LABELS}
    category = {lb.id: lb.categoryId for lb in CITYSCAPES_LABELS}
    expected = {
        "cityscapes": np.vectorize(lambda v: train_id[v])(ids),
        "cityscapes-categories": np.vectorize(lambda v: category[v])(ids),
        "cityscapes-labelids": ids,
    }
    for preset, want in expected.items():
        index = open_dataset(root, "auto", preset if preset != "cityscapes" else None)
        assert index.classes.num_classes == {"cityscapes": 19, "cityscapes-categories": 8,
                                             "cityscapes-labelids": 34}[preset]
        got = index.reader.load(index.split("val")[0])[1]
        np.testing.assert_array_equal(got, want.astype(np.uint8))
    assert expected["cityscapes"][0].tolist() == [0, 1, 13, 255]


def test_cityscapes_errors(cityscapes, tmp_path):
    root, _ = cityscapes
    with pytest.raises(ConfigError, match="Cityscapes targets"):
        open_dataset(root, "cityscapes", "camvid")
    bad = root / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    save(bad, np.full((2, 4), 40, np.uint8))
    index = open_dataset(root)
    with pytest.raises(DataError, match="labelIds.png: Cityscapes label id 40"):
        index.reader.load(index.split("train")[0])
    bad.unlink()
    with pytest.raises(DataError, match="has no label file"):
        open_dataset(root)


# ----------------------------------------------------------------------------------------------- pets
@pytest.fixture()
def pets(tmp_path):
    trimap = np.array([[1, 2, 3], [3, 1, 2]], np.uint8)
    for stem in ["Abyssinian_1", "beagle_2", "beagle_3"]:
        save(tmp_path / "images" / f"{stem}.jpg", photo(2, 3))
        save(tmp_path / "annotations" / "trimaps" / f"{stem}.png", trimap)
    (tmp_path / "annotations" / "trainval.txt").write_text("Abyssinian_1 1 1 1\nbeagle_2 13 2 2\n")
    (tmp_path / "annotations" / "test.txt").write_text("beagle_3 13 2 2\n")
    return tmp_path


def test_pets_targets_and_splits(pets):
    assert detect_format(pets) == "pets"
    index = open_dataset(pets)
    assert [s.image.stem for s in index.split("train")] == ["Abyssinian_1", "beagle_2"]
    assert [s.image.stem for s in index.split("val")] == ["beagle_3"]
    load = lambda idx: idx.reader.load(idx.split("val")[0])[1].tolist()  # noqa: E731
    assert load(index) == [[1, 0, 255], [255, 1, 0]]
    assert load(open_dataset(pets, "pets:border=pet")) == [[1, 0, 1], [1, 1, 0]]
    assert load(open_dataset(pets, "pets:border=background")) == [[1, 0, 0], [0, 1, 0]]
    assert load(open_dataset(pets, classes="pets-trimap")) == [[0, 1, 2], [2, 0, 1]]


def test_pets_bad_trimap_and_options(pets):
    save(pets / "annotations" / "trimaps" / "beagle_3.png", np.array([[1, 4]], np.uint8))
    save(pets / "images" / "beagle_3.jpg", photo(1, 2))
    index = open_dataset(pets)
    with pytest.raises(DataError, match=r"beagle_3.png: trimap value 4"):
        index.reader.load(index.split("val")[0])
    with pytest.raises(ConfigError, match="border=maybe is not one of ignore, pet, background"):
        open_dataset(pets, "pets:border=maybe")
    with pytest.raises(ConfigError, match="unknown option 'size'"):
        open_dataset(pets, "pets:size=3")
    with pytest.raises(ConfigError, match="NAME:key=value"):
        parse_format("pets:border")


# ---------------------------------------------------------------------------------------------- CARLA
def test_carla_red_channel_and_reduction(tmp_path):
    red = np.array([[7, 6, 10], [0, 12, 4]], np.uint8)
    seg = np.stack([red, RNG.integers(0, 256, red.shape, dtype=np.uint8), np.zeros_like(red)], -1)
    for i in range(10):
        save(tmp_path / "dataA" / "CameraRGB" / f"{i}.png", photo(2, 3))
        save(tmp_path / "dataA" / "CameraSeg" / f"{i}.png", seg)
    assert detect_format(tmp_path) == "carla"
    index = open_dataset(tmp_path)
    assert len(index.split("train")) == 9 and len(index.split("val")) == 1
    np.testing.assert_array_equal(index.reader.load(index.split("val")[0])[1], red)
    reduced = open_dataset(tmp_path, classes="carla-reduced")
    assert reduced.classes.names == ["other", "road", "vehicle"]
    assert reduced.reader.load(reduced.split("val")[0])[1].tolist() == [[1, 1, 2], [0, 0, 0]]
    seg[0, 0, 0] = 13
    save(tmp_path / "dataA" / "CameraSeg" / "9.png", seg)
    with pytest.raises(DataError, match=r"9.png: CARLA class id \(red channel\) 13"):
        index.reader.load(index.split("val")[0])
