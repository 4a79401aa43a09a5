"""Tests for the pre-annotation writers (``predict --to``, ``datasets convert --target``): every registered
writer's file, read back by pixelwise's format for that tool, gives the labels written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixelwise.core.errors import DataError
from pixelwise.data.classes import ClassSpec
from pixelwise.data.formats import open_dataset
from pixelwise.data.io import write_png
from pixelwise.data.preannotations import create_preannotation_writer, list_preannotation_formats

# The --format that reads each writer's output back, where it is not the writer's own name.
READ_BACK = {"coco": "coco:ann=coco_predictions.json"}

SPEC = ClassSpec.from_lists(["background", "cell", "nucleus", "debris"])


def label_maps(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Blobs of each class on background, at two sizes; ``debris`` (3) never appears."""
    maps = {}
    for n, (h, w) in enumerate([(24, 32), (31, 17), (24, 32)]):
        ids = np.zeros((h, w), np.uint8)
        ids[2:h // 2, 3:w - 2] = 1
        ids[h // 3: h - 3, w // 4: w // 2] = 2
        ids[rng.random((h, w)) < 0.05] = 1  # single pixels: the shortest runs a writer must keep
        maps[f"img{n}"] = ids if n < 2 else np.zeros((h, w), np.uint8)  # img2: nothing but background
    return maps


@pytest.mark.parametrize("name", list_preannotation_formats())
def test_written_then_read_back_gives_the_same_labels(tmp_path, name):
    maps = label_maps(np.random.default_rng(0))
    writer = create_preannotation_writer(name, SPEC, model_version="run1/best.safetensors")
    (tmp_path / "images").mkdir()
    for stem, ids in maps.items():
        write_png(tmp_path / "images" / f"{stem}.png", np.full((*ids.shape, 3), 90, np.uint8))
        writer.add(Path("images") / f"{stem}.png", ids)
    path = writer.write(tmp_path)
    assert path.parent == tmp_path and path.name == writer.file_name
    SPEC.to_yaml(tmp_path / "classes.yaml")  # keeps the never-used class 3 numbered as it was
    index = open_dataset(tmp_path, READ_BACK.get(name, name))
    got = {s.image.stem: index.reader.load(s)[1] for samples in index.splits.values() for s in samples}
    assert set(got) == set(maps)
    for stem, ids in maps.items():
        assert (got[stem] == ids).all(), stem


def test_label_studio_tasks_carry_model_version_score_and_config(tmp_path):
    writer = create_preannotation_writer("label-studio", SPEC, model_version="run1/best.safetensors")
    ids = np.zeros((4, 6), np.uint8)
    ids[1:3, 2:5] = 2
    writer.add(Path("photos/a.jpg"), ids, score=0.875)
    writer.add(Path("photos/b.jpg"), ids)
    tasks = json.loads(writer.write(tmp_path).read_text())
    first, second = (t["predictions"][0] for t in tasks)
    assert tasks[0]["data"] == {"image": "photos/a.jpg"}
    assert first["model_version"] == "run1/best.safetensors" and first["score"] == 0.875 and "score" not in second
    (region,) = first["result"]  # only the class present; the background is never a region
    assert region["value"]["brushlabels"] == ["nucleus"] and region["value"]["format"] == "rle"
    assert (region["original_width"], region["original_height"]) == (6, 4)
    config = (tmp_path / "label_config.xml").read_text()
    assert config.count("<Label ") == 3 and '<Label value="cell"' in config and 'value="background"' not in config


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools 2.0.11, numpy 2
def test_coco_file_is_standard_coco(tmp_path):
    mask_utils = pytest.importorskip("pycocotools.mask")
    writer = create_preannotation_writer("coco", SPEC, model_version="v2")
    ids = np.zeros((5, 7), np.uint8)
    ids[1:4, 2:6] = 1
    writer.add(Path("x/a.png"), ids)
    data = json.loads(writer.write(tmp_path).read_text())
    assert [c["name"] for c in data["categories"]] == ["cell", "nucleus", "debris"]
    (ann,) = data["annotations"]
    assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and ann["area"] == 12 and ann["bbox"] == [2, 1, 4, 3]
    rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
    assert (mask_utils.decode(rle) == (ids == 1)).all()
    writer.add(Path("y/a.png"), ids)
    with pytest.raises(DataError, match="same file name"):
        writer.write(tmp_path)
