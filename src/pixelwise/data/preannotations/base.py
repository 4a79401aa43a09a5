"""Predictions written back to a labelling tool as pre-annotations: the writer registry and its base class.

``pixelwise predict ... --to cvat|label-studio|coco`` hands each image's predicted class ids to one writer,
which writes a single file the tool imports, so a person corrects a mask rather than drawing it. A writer is
one module in this package with a ``@register_preannotation_writer("name")`` subclass of
:class:`PreAnnotationWriter`.

>>> import tempfile
>>> import numpy as np
>>> from pixelwise.data.classes import ClassSpec
>>> spec = ClassSpec.from_lists(["background", "cell"])
>>> writer = create_preannotation_writer("coco", spec, model_version="demo")
>>> writer.add(Path("images/a.png"), np.array([[0, 1], [1, 1]], np.uint8))
>>> writer.write(Path(tempfile.mkdtemp())).name
'coco_predictions.json'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from pixelwise.core.registry import Registry
from pixelwise.data.classes import ClassSpec


class PreAnnotationWriter(ABC):
    """Collects predicted label maps, one per image, then writes the tool's import file in one go.

    ``labels`` are class ids (row ``i`` of ``classes``) at the image's own size. The base class only stores
    them; subclasses set ``file_name`` and implement :meth:`write`, which must write atomically
    (:func:`pixelwise.core.files.write_text` / ``write_json``) and return the path written.
    """

    file_name: ClassVar[str] = ""

    def __init__(self, classes: ClassSpec, model_version: str = "") -> None:
        self.classes = classes
        self.model_version = model_version  # e.g. the checkpoint's name; tools show it beside the prediction
        self.items: list[tuple[Path, np.ndarray]] = []
        # item index -> the prediction's score (0..1, higher: surer), where known; tools that sort
        # pre-annotations by a score (Label Studio) get it, the others ignore it
        self.scores: dict[int, float] = {}

    def add(self, image: Path, labels: np.ndarray, score: float | None = None) -> None:
        """Remember ``image``'s predicted class ids (an ``(H, W)`` integer array) and its score, if known."""
        if score is not None:
            self.scores[len(self.items)] = float(score)
        self.items.append((Path(image), np.asarray(labels)))

    @abstractmethod
    def write(self, folder: Path) -> Path:
        """Write the import file into ``folder``; return its path."""


PREANNOTATION_WRITERS: Registry[type[PreAnnotationWriter]] = Registry("pre-annotation format")


def register_preannotation_writer(name: str):
    """Class decorator: ``--to NAME`` uses this writer."""
    return PREANNOTATION_WRITERS.register(name)


def list_preannotation_formats() -> list[str]:
    return PREANNOTATION_WRITERS.names()


def create_preannotation_writer(name: str, classes: ClassSpec, model_version: str = "") -> PreAnnotationWriter:
    """The writer registered as ``name`` (a ConfigError listing the choices for an unknown one)."""
    return PREANNOTATION_WRITERS.get(name)(classes, model_version=model_version)
