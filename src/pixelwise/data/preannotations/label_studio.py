"""``--to label-studio``: predictions as Label Studio tasks with brush pre-annotations.

Writes ``label_studio_predictions.json``, a list of tasks Label Studio imports (Label Studio 1.x task
format, "Import > JSON"): per image ``data.image`` (the image path as given; point it at your storage,
or keep the images in an ``images/`` folder beside the file for pixelwise to read it back) and one
``prediction`` with the ``model_version``, a ``score`` when one is known (the prediction's mean certainty:
Label Studio sorts tasks by it, so the least certain come first) and one ``brushlabels`` region per class
present, in Label Studio's brush RLE. Class 0 is the background: it is left unpainted, so what nobody
paints reads back as class 0. Beside it, ``label_config.xml``: the labelling config with one brush label
per other class, in class order and colour; set the project up with it so the labels match.

>>> import json, tempfile
>>> from pixelwise.data.classes import ClassSpec
>>> writer = LabelStudioWriter(ClassSpec.from_lists(["background", "cell"]), model_version="best")
>>> writer.add(Path("images/a.png"), np.array([[0, 1], [1, 1]], np.uint8))
>>> path = writer.write(Path(tempfile.mkdtemp()))
>>> task = json.loads(path.read_text())[0]
>>> task["data"]["image"], task["predictions"][0]["model_version"], task["predictions"][0]["result"][0]["type"]
('images/a.png', 'best', 'brushlabels')
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from pixelwise.core.files import write_json, write_text
from pixelwise.data.ls_rle import encode_brush
from pixelwise.data.preannotations.base import PreAnnotationWriter, register_preannotation_writer

CONFIG_NAME = "label_config.xml"
FROM_NAME, TO_NAME = "tag", "image"  # the config's BrushLabels and Image names, which results refer to


def _hex(color: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in color)


@register_preannotation_writer("label-studio")
class LabelStudioWriter(PreAnnotationWriter):
    """Label Studio tasks with a brush-RLE prediction per image, and the labelling config beside them."""

    file_name = "label_studio_predictions.json"

    def _task(self, n: int, image: Path, labels: np.ndarray) -> dict:
        height, width = labels.shape
        results = []
        for class_id in range(1, self.classes.num_classes):
            inside = labels == class_id
            if inside.any():
                results.append({
                    "id": f"pw{n}_{class_id}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "brushlabels",
                    "original_width": width, "original_height": height, "image_rotation": 0,
                    "value": {"format": "rle", "rle": encode_brush(inside),
                              "brushlabels": [self.classes.names[class_id]]}})
        prediction = {"model_version": self.model_version, "result": results}
        if n in self.scores:
            prediction["score"] = round(self.scores[n], 4)
        return {"data": {TO_NAME: image.as_posix()}, "predictions": [prediction]}

    def label_config(self) -> str:
        """The labelling config: the image and one brush label per class but the background (class 0)."""
        labels = "".join(f"\n    <Label value={quoteattr(c.name)} background={quoteattr(_hex(c.color))}/>"
                         for c in self.classes.classes[1:])
        return (f'<View>\n  <Image name="{TO_NAME}" value="${TO_NAME}" zoom="true"/>\n'
                f'  <BrushLabels name="{FROM_NAME}" toName="{TO_NAME}">{labels}\n  </BrushLabels>\n</View>\n')

    def write(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / CONFIG_NAME, self.label_config())
        path = folder / self.file_name
        write_json(path, [self._task(n, image, labels) for n, (image, labels) in enumerate(self.items)])
        return path
