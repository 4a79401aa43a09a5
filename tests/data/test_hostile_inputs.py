"""Hostile files: decompression bombs, truncated and empty files, masks with values out of range, weight
files that carry pickled code or lying headers, annotation files whose names point outside the dataset.

Each is refused with a pixelwise error naming the file; nothing outside the dataset is read, no code runs.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.core.errors import CheckpointError, DataError
from pixelwise.data.formats import open_dataset
from pixelwise.data.io import encode_png, read_image, read_mask
from pixelwise.data.sample import to_class_ids
from pixelwise.models.checkpoint import load_checkpoint
from pixelwise.models.pretrained import read_state_dict


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of valid PNG whose header claims ``width`` x ``height`` grey pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)  # four rows of zeros; the rest would unpack to gigabytes
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(10_000, 10_000), (100_000, 100_000)], ids=["over-limit", "far-over-limit"])
@pytest.mark.parametrize("reader", [read_image, read_mask], ids=["image", "mask"])
def test_decompression_bombs_are_refused_unread(tmp_path, size, reader):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(*size))
    with pytest.raises(DataError, match=r"bomb\.png: the header claims .*pixels.*PIXELWISE_MAX_IMAGE_PIXELS"):
        reader(path)


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    path.write_bytes(encode_png(np.zeros((30, 40, 3), np.uint8)))
    assert read_image(path).shape == (30, 40, 3)
    monkeypatch.setenv("PIXELWISE_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match="claims 40x30 pixels, more than the limit of 1000"):
        read_image(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
@pytest.mark.parametrize("reader", [read_image, read_mask], ids=["image", "mask"])
def test_truncated_and_empty_files_name_the_file(tmp_path, damage, reader):
    good = encode_png((np.arange(48 * 64 * 3) % 7).astype(np.uint8).reshape(48, 64, 3)[..., 0])
    data = {"empty": b"", "truncated": good[: len(good) // 2], "garbage": os.urandom(300)}[damage]
    path = tmp_path / f"{damage}.png"
    path.write_bytes(data)
    with pytest.raises(DataError, match=rf"{damage}\.png: cannot decode"):
        reader(path)


def test_a_truncated_jpeg_is_refused(tmp_path):
    import cv2

    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.jpg: cannot decode"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("kind", ["16-bit", "palette"])
def test_masks_with_values_out_of_range_name_the_file_and_value(tiny_data, tmp_path, kind):
    spec = open_dataset(tiny_data).classes
    path = tmp_path / f"{kind}.png"
    if kind == "16-bit":
        Image.fromarray(np.full((4, 5), 40000, np.uint16)).save(path)
        value = 40000
    else:
        mask = Image.fromarray(np.full((4, 5), 200, np.uint8))
        mask.putpalette([0, 0, 0] * 256)  # an "L" image with a palette becomes a "P" (palette) image
        mask.save(path)
        value = 200
    with pytest.raises(DataError, match=rf"{kind}\.png: mask value {value} \(20 pixels\) is neither a class"):
        to_class_ids(read_mask(path), spec, path)


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious ``.pth`` does on a plain ``torch.load``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_pth_with_a_pickle_payload_is_refused_and_runs_no_code(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "encoder.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="encoder.pth: cannot read weights"):
        read_state_dict(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: the payload is real, an unsafe load runs it
    assert marker.exists()


def safetensors_bytes(header: dict | None, header_len: int | None = None, data: bytes = b"\0" * 16) -> bytes:
    text = json.dumps(header).encode() if header is not None else b""
    return struct.pack("<Q", header_len if header_len is not None else len(text)) + text + data


LYING = {
    "absurd-header-length": safetensors_bytes(None, header_len=2**62),
    "header-longer-than-file": safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                                 header_len=10_000),
    "sizes-past-the-end": safetensors_bytes({"w": {"dtype": "F32", "shape": [1000, 1000],
                                                   "data_offsets": [0, 4_000_000]}}),
    "shape-disagrees-with-size": safetensors_bytes({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}),
}


@pytest.mark.parametrize("name", list(LYING))
def test_safetensors_whose_header_lies_are_refused(tmp_path, name):
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(LYING[name])
    with pytest.raises(CheckpointError, match=rf"{name}\.safetensors: cannot read weights"):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match=rf"{name}\.safetensors"):
        load_checkpoint(path)


def coco_dataset(root: Path, file_name: str) -> Path:
    pytest.importorskip("pycocotools")
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "images" / "ok.png").write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8)))
    data = {"images": [{"id": 1, "file_name": "images/ok.png", "height": 8, "width": 8},
                       {"id": 2, "file_name": file_name, "height": 8, "width": 8}],
            "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (root / "ann.json").write_text(json.dumps(data))
    return root


@pytest.mark.parametrize("how", ["dot-dot", "absolute", "symlink"])
def test_coco_file_names_outside_the_dataset_are_refused(tmp_path, how):
    secret = tmp_path / "secret.png"
    secret.write_bytes(encode_png(np.full((8, 8, 3), 9, np.uint8)))
    root = tmp_path / "ds"
    name = {"dot-dot": "../secret.png", "absolute": str(secret), "symlink": "images/link.png"}[how]
    coco_dataset(root, name)
    if how == "symlink":
        (root / "images" / "link.png").symlink_to(secret)
    with pytest.raises(DataError, match="ann.json: .*(points outside|is a symlink to).*refused"):
        open_dataset(root, "coco:ann=ann.json")


def test_rle_image_ids_outside_the_dataset_are_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8)))
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8)))
    (root / "train.csv").write_text("ImageId,EncodedPixels\na.png,1 2\n../secret.png,1 2\n")
    with pytest.raises(DataError, match=r"ImageId \.\./secret\.png has no image"):
        open_dataset(root, "rle-csv")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300, "12"], ids=["nan", "inf", "huge", "text"])
def test_coco_polygons_with_non_finite_coordinates_are_refused(tmp_path, value):
    # pycocotools' rasteriser crashed the whole process (SIGSEGV) on these, as fuzzing found.
    pytest.importorskip("pycocotools")
    from pixelwise.data.classes import ClassSpec
    from pixelwise.data.formats.coco_masks import CocoReader
    from pixelwise.data.sample import Sample

    image, ann = tmp_path / "a.png", tmp_path / "ann.json"
    image.write_bytes(encode_png(np.zeros((6, 7, 3), np.uint8)))
    polygon = [0, 0, 5, 0, value, 4]
    reader = CocoReader(ClassSpec.from_lists(["background", "thing"]),
                        {str(ann): {str(image): (1, 6, 7, [(1, False, None, 3, [polygon])])}})
    with pytest.raises(DataError, match="ann.json: annotation 3: a polygon coordinate is not a finite number"):
        reader.read_ids(Sample(image, ann))
