"""What a format tells the user while reading: COCO files that are mostly crowd regions, and the classes
an RLE CSV's class column gives when no classes.yaml names them. Both through ``datasets inspect``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from pixelwise.core.errors import DataError
from pixelwise.data.formats import open_dataset
from pixelwise.data.rle import rle_encode
from pixelwise.testing import run_cli

H, W = 8, 10


def write_image(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)


# ------------------------------------------------------------------------------------------------ COCO
def per_class_crowd_coco(root, with_area: bool) -> None:
    """One compressed RLE per class per image, all ``iscrowd: 1``, as tools exporting semantic masks write
    them (COCO 1.0 data format: RLE ``counts`` as a string, ``size`` [height, width])."""
    mask_utils = pytest.importorskip("pycocotools.mask")
    images, anns = [], []
    for i in range(3):
        write_image(root / "train" / "images" / f"{i}.png", i)
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": H, "width": W})
        for category, cols in ((1, slice(0, 4)), (2, slice(4, 10))):
            region = np.zeros((H, W), np.uint8)
            region[:, cols] = 1
            rle = mask_utils.encode(np.asfortranarray(region))
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": category, "iscrowd": 1,
                   "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")}}
            if with_area:
                ann["area"] = int(region.sum())
            anns.append(ann)
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "road"}, {"id": 2, "name": "grass"}]}
    (root / "train" / "annotation.json").write_text(json.dumps(data))


def test_inspect_warns_when_coco_annotations_are_all_crowd(tmp_path):
    per_class_crowd_coco(tmp_path, with_area=False)  # no area fields: pycocotools measures the RLEs
    result = run_cli("datasets", "inspect", str(tmp_path))
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stdout.splitlines() if "crowd" in line)
    assert warning.startswith("warning: ") and "annotation.json: 100% of the annotated area is crowd" in warning
    assert "become ignore" in warning and "--format coco:crowd=class" in warning
    # what the warning is about: every labelled pixel is ignored
    assert re.search(r"^\(ignored\)\s+100\.0", result.stdout, re.MULTILINE), result.stdout


def test_no_crowd_note_when_crowd_is_kept_or_a_minority(tmp_path):
    per_class_crowd_coco(tmp_path, with_area=True)
    assert any("crowd" in note for note in open_dataset(tmp_path, "coco").notes)
    assert open_dataset(tmp_path, "coco:crowd=class").notes == []
    path = tmp_path / "train" / "annotation.json"
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["iscrowd"] = int(ann["category_id"] == 1)  # crowd: 4 of every 10 columns, 40% of the area
    path.write_text(json.dumps(data))
    assert open_dataset(tmp_path, "coco").notes == []


# --------------------------------------------------------------------------------------------- RLE CSV
def steel_like_csv(root, class_ids=(1, 3)) -> dict[str, np.ndarray]:
    """Kaggle's ``ImageId,EncodedPixels,ClassId`` (Severstal steel defects), no classes.yaml; the masks."""
    lines, masks = ["ImageId,EncodedPixels,ClassId"], {}
    for i in range(4):
        name, mask = f"{i}.jpg", np.zeros((H, W), np.uint8)
        write_image(root / "train_images" / name, i)
        for k, class_id in enumerate(class_ids):
            part = np.zeros((H, W), bool)
            part[2 * k : 2 * k + 2, i : i + 3] = True
            mask[part] = class_id
            lines.append(f"{name},{rle_encode(part)},{class_id}")
        masks[name] = mask
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return masks


def test_inspect_infers_classes_from_the_class_column(tmp_path):
    masks = steel_like_csv(tmp_path)
    result = run_cli("datasets", "inspect", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "format: rle-csv, 3 classes" in result.stdout
    assert ("warning: classes: inferred from the ClassId column of train.csv: background, class_1, class_3 "
            "(values 0/1/3); write a classes.yaml to name them") in result.stdout
    index = open_dataset(tmp_path)
    assert index.classes_inferred and index.classes.names == ["background", "class_1", "class_3"]
    for sample in index.split("train"):  # stored values 0, 1, 3 are class ids 0, 1, 2
        expected = np.searchsorted([0, 1, 3], masks[sample.image.name])
        np.testing.assert_array_equal(index.reader.load(sample)[1], expected)


def test_rle_classes_inference_gives_way_and_refuses_what_it_cannot_number(tmp_path):
    steel_like_csv(tmp_path, class_ids=(1, 2))
    index = open_dataset(tmp_path)
    assert index.classes.names == ["background", "class_1", "class_2"] and index.classes.values is None
    (tmp_path / "classes.yaml").write_text("classes:\n- {name: steel, color: [0, 0, 0]}\n"
                                           "- {name: pit, color: [255, 0, 0]}\n- {name: crack, color: [0, 255, 0]}\n")
    index = open_dataset(tmp_path)
    assert index.classes.names == ["steel", "pit", "crack"] and not index.classes_inferred and index.notes == []
    (tmp_path / "classes.yaml").unlink()
    steel_like_csv(tmp_path, class_ids=(0, 2))
    with pytest.raises(DataError, match=r"train.csv row 2: ClassId=0 cannot be inferred as a class"):
        open_dataset(tmp_path)
