"""``predict --to cvat``'s writer: its annotations.xml, beside the images, reads back as the same labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import open_dataset
from pixelwise.data.io import write_png
from pixelwise.data.preannotations import create_preannotation_writer, list_preannotation_formats

SPEC = ClassSpec.from_lists(["background", "cell", "nucleus", "debris"],
                            [(0, 0, 0), (255, 0, 0), (0, 128, 255), (10, 200, 30)])


def predictions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = {f"img{i}.png": rng.integers(0, 4, (9 + i, 13 - i)).astype(np.uint8) for i in range(4)}
    labels["img0.png"][0, 0] = 2  # a class whose box starts on a set pixel: its runs start with a 0
    labels["empty.png"] = np.zeros((5, 6), np.uint8)  # background only: no <mask> at all
    labels["one.png"] = np.full((4, 4), 3, np.uint8)  # one class everywhere: a box of the whole image
    return labels


def test_writer_output_reads_back_as_the_same_labels(tmp_path):
    assert "cvat" in list_preannotation_formats()
    labels = predictions()
    writer = create_preannotation_writer("cvat", SPEC, model_version="unet-e12")
    (tmp_path / "images").mkdir()
    for name, ids in labels.items():
        image = tmp_path / "images" / name
        write_png(image, np.zeros((*ids.shape, 3), np.uint8))
        writer.add(image, ids)
    path = writer.write(tmp_path)
    assert path == tmp_path / "annotations.xml"

    index = open_dataset(tmp_path)
    assert index.format == "cvat" and index.classes == SPEC  # names and colours from <meta>, in order
    read = {s.image.name: index.reader.read_ids(s) for split in index.splits.values() for s in split}
    assert read.keys() == labels.keys()
    for name, ids in labels.items():
        np.testing.assert_array_equal(read[name], ids, err_msg=name)

    # What CVAT's importer reads (cvat/apps/dataset_manager/formats/cvat.py, load_anno): label, the rle as
    # comma-separated integers, left/top/width/height; one mask per class per image, none for background.
    root = ET.parse(path).getroot()
    assert root.findtext("version") == "1.1"
    assert [x.findtext("name") for x in root.iter("label")] == SPEC.names
    assert [x.findtext("color") for x in root.iter("label")][1] == "#ff0000"
    image = root.find("./image[@name='img0.png']")
    assert image.get("width") == "13" and image.get("height") == "9"
    masks = image.findall("mask")
    assert sorted(m.get("label") for m in masks) == ["cell", "debris", "nucleus"]
    for m in masks:
        runs = [int(v) for v in m.get("rle").split(",")]
        assert sum(runs) == int(m.get("width")) * int(m.get("height"))
    nucleus = next(m for m in masks if m.get("label") == "nucleus")
    assert nucleus.get("left") == "0" and nucleus.get("top") == "0" and nucleus.get("rle").startswith("0, ")
    assert root.find("./image[@name='empty.png']").findall("mask") == []
    one = root.find("./image[@name='one.png']/mask")
    assert (one.get("rle"), one.get("width"), one.get("height")) == ("0, 16", "4", "4")


def test_two_images_of_one_name_are_refused(tmp_path):
    writer = create_preannotation_writer("cvat", SPEC)
    writer.add(Path("a/x.png"), np.zeros((2, 2), np.uint8))
    writer.add(Path("b/x.png"), np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="same name"):
        writer.write(tmp_path)
    assert not (tmp_path / "annotations.xml").exists()
