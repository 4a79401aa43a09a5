"""Tests for the label-studio format (Label Studio JSON exports) and its brush RLE.

Every export below follows Label Studio 1.x's documented JSON export ("Label Studio JSON format of
annotated tasks", labelstud.io/guide/task_format: tasks with ``data``, ``annotations[]`` holding
``result[]``, ``was_cancelled``, ``completed_by``, ``created_at`` / ``updated_at``; results with
``original_width`` / ``original_height``), with brush regions in the RLE of label-studio-converter's ``brush.py``
(0.0.60.dev, August 2024) and polygon points in percent, as Label Studio 1.x writes them.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import detect_format, open_dataset
from pixelwise.data.io import write_png
from pixelwise.data.ls_rle import decode_brush, decode_values, encode_brush

H, W = 8, 10


def brush(label: str, mask: np.ndarray, height: int = H, width: int = W) -> dict:
    return {"id": f"b{label}", "from_name": "tag", "to_name": "image", "type": "brushlabels",
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"format": "rle", "rle": encode_brush(mask), "brushlabels": [label]}}


def polygon(label: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    """A rectangle in pixels [x0, x1) x [y0, y1), written as Label Studio does: points in percent."""
    points = [[x * 100 / W, y * 100 / H] for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return {"id": f"p{label}", "from_name": "poly", "to_name": "image", "type": "polygonlabels",
            "original_width": W, "original_height": H, "value": {"points": points, "polygonlabels": [label]}}


def annotation(ann_id: int, results: list[dict], user: object = 1, updated: str = "2024-05-01T10:00:00.000000Z",
               cancelled: bool = False) -> dict:
    return {"id": ann_id, "result": results, "was_cancelled": cancelled, "ground_truth": False,
            "created_at": "2024-05-01T09:00:00.000000Z", "updated_at": updated, "lead_time": 4.2,
            "task": 0, "completed_by": user}


def box(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[rows, cols] = True
    return m


def write_export(root: Path, tasks: list[dict], images: dict[str, tuple[int, int]] | None = None) -> Path:
    """The export as ``root/project-1-at-2024-05-01.json`` beside ``images/`` holding the given files."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, (height, width) in (images or {}).items():
        write_png(root / "images" / name, np.full((height, width, 3), 120, np.uint8))
    path = root / "project-1-at-2024-05-01-10-00-1a2b3c4d.json"
    path.write_text(json.dumps(tasks))
    return path


@pytest.fixture
def export(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """Three tasks (two upload-prefixed, one a local path), several annotators, and the expected class ids
    (background 0, then the labels sorted: cell 1, nucleus 2)."""
    cell, nucleus = box(slice(1, 6), slice(2, 8)), box(slice(3, 5), slice(4, 6))
    older = annotation(11, [brush("nucleus", box(slice(0, 8), slice(0, 10)))], updated="2024-04-01T00:00:00Z")
    cancelled = annotation(13, [brush("nucleus", cell)], user=3, updated="2024-06-01T00:00:00Z", cancelled=True)
    latest = annotation(12, [brush("cell", cell), polygon("nucleus", 4, 3, 6, 5)],
                        user={"id": 2, "email": "ann@example.com"})
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/1/1a2b3c4d-a.png"}, "annotations": [older, latest, cancelled],
         "predictions": []},
        # Nucleus first, then the cell over it: the later region wins where they overlap.
        {"id": 2, "data": {"image": "/data/upload/1/0badcafe-b.png"},
         "annotations": [annotation(21, [polygon("nucleus", 0, 0, 5, 4), brush("cell", cell)])]},
        {"id": 3, "data": {"image": "images/c.png"}, "annotations": [annotation(31, [])]},  # labelled: all background
        {"id": 4, "data": {"image": "/data/upload/1/12345678-d.png"}, "annotations": []},  # not labelled yet
    ]
    write_export(tmp_path, tasks, {"a.png": (H, W), "b.png": (H, W), "c.png": (H, W), "d.png": (H, W)})
    a = np.where(nucleus, 2, np.where(cell, 1, 0))
    b = np.where(cell, 1, np.where(box(slice(0, 4), slice(0, 5)), 2, 0))
    return tmp_path, {"a": a, "b": b, "c": np.zeros((H, W), int)}


def read_all(index) -> dict[str, np.ndarray]:
    return {s.image.stem: index.reader.load(s)[1] for samples in index.splits.values() for s in samples}


# --- the brush RLE --------------------------------------------------------------------------------------

def test_decodes_label_studio_converters_own_bytes():
    # label_studio_converter.brush.mask2rle of this mask x 255 (0.0.60.dev): its single pixels are literal
    # records (repeat bit 0), its runs repeat records.
    mask = np.array([[0, 1, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0]], bool)
    rle = [0, 0, 0, 48, 57, 27, 252, 96, 19, 255, 206, 1, 111, 254, 248, 0]
    assert (decode_brush(rle, 3, 4) == mask).all()


def test_decodes_literal_blocks_and_other_field_widths():
    # As thi.ng's rle-pack (Label Studio's frontend) may write: 16-bit words, run lengths in 2/3/5/7 bits,
    # a literal block of three words, then one repeated word.
    fields = [(6, 32), (15, 5), (1, 4), (2, 4), (4, 4), (6, 4),
              (0, 1), (1, 2), (2, 3), (7, 16), (8, 16), (300, 16),   # 3 literal words
              (1, 1), (0, 2), (2, 2), (65535, 16)]                    # 3 x 65535
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    bits += "0" * (-len(bits) % 8)
    data = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    assert decode_values(data).tolist() == [7, 8, 300, 65535, 65535, 65535]


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (200, 200)])  # 200 x 200 x 4: runs past 2**16 values
def test_encode_decode_round_trip(shape):
    rng = np.random.default_rng(sum(shape))
    for mask in (rng.random(shape) < 0.5, np.ones(shape, bool), np.zeros(shape, bool)):
        assert (decode_brush(encode_brush(mask), *shape) == mask).all()


def test_alpha_at_or_below_128_is_outside():
    values = np.zeros((1, 3, 4), np.uint8)
    values[0, :, 3] = [128, 129, 255]
    fields = [(12, 32), (7, 5), (15, 4), (15, 4), (15, 4), (15, 4)] + [(0, 1), (0, 2), (11, 16)]
    fields += [(int(v), 8) for v in values.ravel()]
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    bits += "0" * (-len(bits) % 8)
    data = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    assert decode_brush(data, 1, 3).tolist() == [[False, True, True]]


def test_broken_rle_is_one_clear_error():
    rle = encode_brush(np.ones((4, 4), bool))
    with pytest.raises(DataError, match="task 9: brush RLE ends early"):
        decode_brush(rle[:5], 4, 4, "task 9")
    with pytest.raises(DataError, match=r"holds 64 values, but .* 5 x 4 x 4 = 80"):
        decode_brush(rle, 4, 5, "task 9")
    with pytest.raises(DataError, match="list of bytes"):
        decode_brush([1, 300], 4, 4, "task 9")


# --- the export -----------------------------------------------------------------------------------------

def test_reads_brush_and_polygons_equal_to_the_source_masks(export):
    root, expected = export
    assert detect_format(root) == "label-studio"
    index = open_dataset(root)
    assert index.classes.names == ["background", "cell", "nucleus"]
    got = read_all(index)
    assert set(got) == set(expected)  # task 4 has no annotation: left out, said in a note
    for stem, ids in expected.items():
        assert (got[stem] == ids).all(), stem
    assert any("1 of 4 tasks have no usable annotation" in n for n in index.notes)
    assert any("sorted by name" in n for n in index.notes)
    assert pickle.loads(pickle.dumps(index.reader)).load(index.splits["train"][0])[1].shape == (H, W)


def test_latest_annotation_by_default_and_one_annotator_on_request(export):
    root, expected = export
    first = next(s for s in open_dataset(root, "label-studio").splits["train"] if s.image.stem == "a")
    assert (open_dataset(root).reader.load(first)[1] == expected["a"]).all()  # 12, not the older 11
    for who in ("1", "ann@example.com", "2"):
        index = open_dataset(root, f"label-studio:annotator={who}")
        got = read_all(index)
        if who == "1":  # annotator 1 made annotation 11 of task 1 (all nucleus) and those of tasks 2 and 3
            assert (got["a"] == 2).all() and set(got) == {"a", "b", "c"}
        else:  # annotator 2 only annotated task 1: the others are left out
            assert set(got) == {"a"} and (got["a"] == expected["a"]).all()
    with pytest.raises(DataError, match="usable annotation by nobody@example.com"):
        open_dataset(root, "label-studio:annotator=nobody@example.com")


def test_label_config_sets_order_and_colours_and_background(export):
    root, expected = export
    (root / "label_config.xml").write_text(
        '<View><Image name="image" value="$image"/>'
        '<BrushLabels name="tag" toName="image"><Label value="nucleus" background="#00ff00"/>'
        '<Label value="Background" background="#000000"/><Label value="cell" background="#FF0000"/></BrushLabels>'
        '<PolygonLabels name="poly" toName="image"><Label value="nucleus"/></PolygonLabels></View>')
    index = open_dataset(root)
    assert index.classes.names == ["Background", "nucleus", "cell"]
    assert [c.color for c in index.classes.classes] == [(0, 0, 0), (0, 255, 0), (255, 0, 0)]
    swap = np.array([0, 2, 1])
    for stem, ids in read_all(index).items():
        assert (ids == swap[expected[stem]]).all()


def test_classes_yaml_matches_labels_by_name(export):
    root, expected = export
    ClassSpec.from_lists(["background", "nucleus", "cell"]).to_yaml(root / "classes.yaml")
    assert (read_all(open_dataset(root))["b"] == np.array([0, 2, 1])[expected["b"]]).all()
    ClassSpec.from_lists(["background", "cell"]).to_yaml(root / "classes.yaml")
    with pytest.raises(DataError, match="label 'nucleus' is not one of the classes"):
        open_dataset(root)


def test_predictions_are_read_when_nothing_is_annotated(tmp_path):
    cell = box(slice(2, 4), slice(0, 3))
    tasks = [{"id": 1, "data": {"image": "x.png"}, "annotations": [],
              "predictions": [{"model_version": "v1", "score": 0.5, "result": [brush("cell", cell)]}]}]
    write_export(tmp_path, tasks, {"x.png": (H, W)})
    index = open_dataset(tmp_path)
    assert (read_all(index)["x"] == cell).all()
    assert any("predictions were read" in n for n in index.notes)
    with pytest.raises(DataError, match="none of its 1 tasks has a usable annotation"):
        open_dataset(tmp_path, "label-studio:source=annotations")


@pytest.mark.parametrize("change, message", [
    (lambda t: t[0]["data"].update(image="/data/upload/1/1a2b3c4d-missing.png"),
     "task 1: its image '/data/upload/1/1a2b3c4d-missing.png' is not in"),
    (lambda t: t[0]["annotations"][0]["result"][0].update(original_width=W + 2),
     "drawn on a 12x8 image .* but the image file is 10x8"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(brushlabels=["cell", "nucleus"]),
     "needs exactly one label per region"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(rle=[1, 2, 999]), "integers 0..255"),
    (lambda t: t[0]["annotations"][0]["result"].append(
        {"type": "polygonlabels", "original_width": W, "original_height": H,
         "value": {"points": [[0, "x"], [1, 1], [2, 2]], "polygonlabels": ["cell"]}}), "polygon points"),
    (lambda t: t.append({"id": 2, "data": {"image": "a.png"}, "annotations": [annotation(5, [])]}),
     "also the image of another task"),
    (lambda t: t.append({"id": 2, "data": {"n": 1}, "annotations": [annotation(5, [])]}), "task 2: no image in data"),
    (lambda t: t.append({"id": 2, "annotations": []}), "task 1 has no 'data' object"),
])
def test_bad_exports_are_one_clear_error(tmp_path, change, message):
    tasks = [{"id": 1, "data": {"image": "a.png"}, "annotations": [annotation(1, [brush("cell", box(slice(0, 2),
                                                                                                    slice(0, 2)))])]}]
    change(tasks)
    write_export(tmp_path, tasks, {"a.png": (H, W)})
    with pytest.raises(DataError, match=message):
        index = open_dataset(tmp_path, "label-studio")
        read_all(index)


def test_several_exports_need_a_choice(export):
    root, _ = export
    (root / "second.json").write_text(json.dumps([{"id": 1, "data": {"image": "a.png"}, "annotations": []}]))
    with pytest.raises(ConfigError, match="json=NAME"):
        open_dataset(root, "label-studio")
    assert read_all(open_dataset(root, "label-studio:json=project-1-at-2024-05-01-10-00-1a2b3c4d.json"))
    with pytest.raises(DataError, match="points outside"):
        open_dataset(root, "label-studio:json=../x.json")


def test_other_json_is_not_taken_for_an_export(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "meta.json").write_text(json.dumps({"images": [], "annotations": []}))
    (tmp_path / "list.json").write_text(json.dumps([1, 2, 3]))
    assert detect_format(tmp_path) != "label-studio"
