"""``--to coco``: predictions as COCO JSON, one RLE per class per image.

Writes ``coco_predictions.json``: ``images`` (``file_name`` is the image's file name, so keep the images
beside the file or in ``images/`` beside it), ``categories`` (the classes but the background, class 0,
with ids 1..n in class order) and one annotation per class present in an image, its pixels as one
compressed RLE (pycocotools), with ``area``, ``bbox`` and ``iscrowd: 0`` (a crowd region is read as
ignore by many tools). Labelling tools that import COCO masks (CVAT, Label Studio's converter) and
pixelwise's own ``coco`` format (``--format coco:ann=coco_predictions.json``) read it.

>>> import json, tempfile
>>> from pixelwise.data.classes import ClassSpec
>>> writer = CocoWriter(ClassSpec.from_lists(["background", "cell"]), model_version="best")
>>> writer.add(Path("photos/a.png"), np.array([[0, 1], [1, 1]], np.uint8))
>>> data = json.loads(writer.write(Path(tempfile.mkdtemp())).read_text())
>>> data["images"][0]["file_name"], data["categories"], data["annotations"][0]["area"]
('a.png', [{'id': 1, 'name': 'cell', 'supercategory': ''}], 3)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pixelwise.core.errors import DataError
from pixelwise.core.files import write_json
from pixelwise.data.formats.coco_masks import mask_api
from pixelwise.data.preannotations.base import PreAnnotationWriter, register_preannotation_writer


@register_preannotation_writer("coco")
class CocoWriter(PreAnnotationWriter):
    """COCO JSON with one compressed RLE annotation per class present in each image."""

    file_name = "coco_predictions.json"

    def _annotations(self, api, image_id: int, labels: np.ndarray, first_id: int) -> list[dict]:
        found = []
        for class_id in range(1, self.classes.num_classes):
            inside = labels == class_id
            if not inside.any():
                continue
            with warnings.catch_warnings():  # pycocotools 2.0.11 under numpy 2 warns on every call
                warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
                rle = api.encode(np.asfortranarray(inside.astype(np.uint8)))
                box = [float(v) for v in api.toBbox(rle)]
            found.append({"id": first_id + len(found), "image_id": image_id, "category_id": class_id,
                          "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                          "area": int(inside.sum()), "bbox": box, "iscrowd": 0})
        return found

    def write(self, folder: Path) -> Path:
        api = mask_api()
        images, annotations, names = [], [], {}
        for image_id, (image, labels) in enumerate(self.items, start=1):
            if image.name in names:  # COCO tools match images by file name
                raise DataError(f"{image}: same file name as {names[image.name]}; COCO matches images by name, so "
                                "rename one of them")
            names[image.name] = image
            height, width = labels.shape
            images.append({"id": image_id, "file_name": image.name, "width": width, "height": height})
            annotations += self._annotations(api, image_id, labels, len(annotations) + 1)
        categories = [{"id": k, "name": name, "supercategory": ""} for k, name in enumerate(self.classes.names) if k]
        data = {"info": {"description": "pixelwise predictions", "version": self.model_version},
                "images": images, "annotations": annotations, "categories": categories}
        path = Path(folder) / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)
        return path
