"""Training works unchanged on every dataset layout: the same scenes written in each format train
through ``--format`` and their labels decode to the same classes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pixelwise.data.formats import FORMATS, open_dataset
from pixelwise.data.preannotations.label_studio import LabelStudioWriter
from pixelwise.data.presets import get_preset
from pixelwise.data.rle import rle_encode
from pixelwise.data.synthetic import CLASSES, make_scene
from pixelwise.testing import TINY_MODEL
from pixelwise.training.config import TrainConfig
from pixelwise.training.trainer import train

SPLITS = {"train": 6, "val": 2}
# synthetic classes (sky, building, road, pavement, tree, car) as Cityscapes label ids and CARLA ids
CITYSCAPES_IDS = np.array([23, 11, 7, 8, 21, 26], np.uint8)
CARLA_IDS = np.array([0, 1, 7, 8, 9, 10], np.uint8)


def scenes():
    rng = np.random.default_rng(0)
    return {split: [make_scene(rng, 32, 48) for _ in range(n)] for split, n in SPLITS.items()}


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write(fmt: str, root: Path) -> str | None:
    """Write the scenes in layout ``fmt``; returns the --classes to train with (None = format default)."""
    data = scenes()
    palette = get_preset("cityscapes-labelids").palette
    for split, items in data.items():
        for i, (image, mask) in enumerate(items):
            stem = f"{split}{i}"
            if fmt == "folders":
                save(root / "images" / split / f"{stem}.png", image)
                save(root / "masks" / split / f"{stem}.png", mask)
            elif fmt == "camvid":
                save(root / split / f"{stem}.png", image)
                save(root / f"{split}annot" / f"{stem}.png", mask)
            elif fmt == "camvid32":
                save(root / split / f"{stem}.png", image)
                save(root / f"{split}_labels" / f"{stem}_L.png", get_preset("camvid").palette[mask])
            elif fmt == "cityscapes":
                save(root / "leftImg8bit" / split / "city" / f"{stem}_leftImg8bit.png", image)
                save(root / "gtFine" / split / "city" / f"{stem}_gtFine_labelIds.png", CITYSCAPES_IDS[mask])
            elif fmt == "composite":
                save(root / split / f"{stem}.png", np.concatenate([image, palette[CITYSCAPES_IDS[mask]]], axis=1))
            elif fmt == "pets":
                save(root / "images" / f"{stem}.jpg", image)
                save(root / "annotations" / "trimaps" / f"{stem}.png", np.where(mask == 5, 1, 2).astype(np.uint8))
            elif fmt == "carla":
                save(root / "CameraRGB" / f"{stem}.png", image)
                save(root / "CameraSeg" / f"{stem}.png", np.stack([CARLA_IDS[mask]] + [np.zeros_like(mask)] * 2, -1))
            elif fmt == "rle-csv":
                save(root / "images" / f"{stem}.png", image)
            elif fmt == "coco":
                save(root / split / "images" / f"{stem}.png", image)
            elif fmt == "cvat":  # CVAT's "Segmentation mask 1.1" export: colour PNGs, labelmap.txt, subset lists
                save(root / "JPEGImages" / f"{stem}.png", image)
                save(root / "SegmentationClass" / f"{stem}.png", CLASSES.palette[mask])
            elif fmt == "label-studio":
                save(root / "images" / f"{stem}.png", image)
    if fmt == "camvid32":
        rows = [f"{c.name},{c.color[0]},{c.color[1]},{c.color[2]}" for c in get_preset("camvid").classes]
        (root / "class_dict.csv").write_text("name,r,g,b\n" + "\n".join(rows) + "\n")
    if fmt == "pets":
        for split, list_name in [("train", "trainval"), ("val", "test")]:
            lines = [f"{split}{i} 1 1 1" for i in range(SPLITS[split])]
            (root / "annotations" / f"{list_name}.txt").write_text("\n".join(lines) + "\n")
    if fmt == "cvat":
        (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\n" + "".join(
            f"{c.name}:{','.join(map(str, c.color))}::\n" for c in CLASSES.classes))
        (root / "ImageSets" / "Segmentation").mkdir(parents=True)
        for split, subset in (("train", "Train"), ("val", "Validation")):
            (root / "ImageSets" / "Segmentation" / f"{subset}.txt").write_text(
                "".join(f"{split}{i}\n" for i in range(SPLITS[split])))
    if fmt == "label-studio":  # a Label Studio 1.x JSON export: brush regions as annotations, images/ beside it
        writer = LabelStudioWriter(CLASSES, model_version="test")
        for split, items in data.items():
            for i, (_, mask) in enumerate(items):
                writer.add(Path(f"images/{split}{i}.png"), mask)
            (root / f"{split}.txt").write_text("".join(f"{split}{i}\n" for i in range(len(items))))
        tasks = json.loads(writer.write(root).read_text())
        for n, task in enumerate(tasks):  # an annotator's work rather than the model's pre-annotations
            task["annotations"] = [{"id": n + 1, "result": task.pop("predictions")[0]["result"]}]
        (root / writer.file_name).write_text(json.dumps(tasks))
        write_classes_yaml(root)
        return None
    if fmt == "rle-csv":
        rows = ["ImageId,EncodedPixels,ClassId"]
        for split, items in data.items():
            for i, (_, mask) in enumerate(items):
                rows += [f"{split}{i}.png,{rle_encode(mask == c)},{c}" for c in range(1, 6) if (mask == c).any()]
            (root / f"{split}.txt").write_text("".join(f"{split}{i}\n" for i in range(len(items))))
        (root / "masks.csv").write_text("\n".join(rows) + "\n")
        write_classes_yaml(root)
        return None
    if fmt == "coco":
        from pycocotools import mask as mask_api

        for split, items in data.items():
            images, annotations = [], []
            for i, (_, mask) in enumerate(items):
                images.append({"id": i, "file_name": f"{split}{i}.png", "height": 32, "width": 48})
                for c in range(1, 6):
                    if (mask == c).any():
                        rle = mask_api.encode(np.asfortranarray((mask == c).astype(np.uint8)))
                        annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": c,
                                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                                            "area": int((mask == c).sum()), "iscrowd": 0})
            categories = [{"id": c, "name": n} for c, n in enumerate(CLASSES.names[1:], start=1)]
            (root / split / "annotation.json").write_text(json.dumps(
                {"images": images, "annotations": annotations, "categories": categories}))
    return {"pets": None, "carla": None, "camvid": None, "camvid32": None, "coco": None,
            "cityscapes": "cityscapes-labelids", "composite": "cityscapes-labelids"}.get(fmt, None)


def write_classes_yaml(root: Path) -> None:
    CLASSES.to_yaml(root / "classes.yaml")


def test_every_format_is_covered():
    assert set(FORMATS) == {"folders", "camvid", "camvid32", "cityscapes", "composite", "pets", "carla", "rle-csv",
                            "coco", "cvat", "label-studio"}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_train_one_epoch_on_format(fmt, tmp_path):
    if fmt == "coco":
        pytest.importorskip("pycocotools")
    if fmt == "folders":
        write_classes_yaml(tmp_path)
    classes = write(fmt, tmp_path)
    index = open_dataset(tmp_path, "auto", classes)
    assert index.format == fmt
    # the first training mask decodes to the scene's own classes, mapped through the format's ids
    image, ids = index.reader.load(index.split("train")[0])
    assert image.shape == (32, 48, 3) and ids.shape == (32, 48)
    truth = scenes()["train"][0][1]
    expected = {"cityscapes": CITYSCAPES_IDS[truth], "composite": CITYSCAPES_IDS[truth], "carla": CARLA_IDS[truth],
                "pets": np.where(truth == 5, 1, 0)}.get(fmt, truth)
    if fmt == "coco":
        expected = truth  # background 0 + categories 1..5 in list order
    if fmt == "cvat":
        expected = truth + 1  # CVAT's background first, then the labels in labelmap.txt's order
    assert (ids == expected).mean() > 0.999
    cfg = TrainConfig(data=str(tmp_path), format=fmt, classes=classes, img_size=(32, 48), batch_size=3, workers=0,
                      epochs=1, progress=False, precision="fp32", model_kwargs=TINY_MODEL, out=str(tmp_path / "run"))
    result = train(cfg)
    assert (tmp_path / "run" / "best.safetensors").is_file() and result.epochs_done == 1
    assert 0 <= result.best_metrics["miou"] <= 1


def test_composite_png_is_read_even_when_photo_and_mask_have_cv2_channel_order(tmp_path):
    """cv2 writes BGR: a composite written with cv2 must still decode to the right classes once read as RGB."""
    palette = get_preset("cityscapes-labelids").palette
    mask = np.full((4, 4), 26, np.uint8)  # car (0, 0, 142): blue, so a BGR/RGB mix-up would show
    rgb = np.concatenate([np.zeros((4, 4, 3), np.uint8), palette[mask]], axis=1)
    (tmp_path / "train").mkdir()
    cv2.imwrite(str(tmp_path / "train" / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    index = open_dataset(tmp_path, "composite")
    assert (index.reader.load(index.split("train")[0])[1] == 26).all()
