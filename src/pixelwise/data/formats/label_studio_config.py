"""The labels of a Label Studio labelling config (the project's XML), in their order and colours.

Only the mask tools count: the ``<Label value="..." background="#rrggbb"/>`` children of
``<BrushLabels>`` and ``<PolygonLabels>``. A label listed under both is one class.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "label_config.xml"
>>> _ = path.write_text('<View><Image name="image" value="$image"/>'
...     '<BrushLabels name="tag" toName="image"><Label value="cell" background="#ff0000"/></BrushLabels></View>')
>>> read_label_config(path)
[('cell', (255, 0, 0))]
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from pixelwise.core.errors import DataError

MASK_TAGS = ("BrushLabels", "PolygonLabels")
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _color(text: str | None) -> tuple[int, int, int] | None:
    """``#rrggbb`` as RGB; None for colour names and other forms (the palette then chooses)."""
    match = _HEX.match((text or "").strip())
    if not match:
        return None
    value = match.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def read_label_config(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """``(label, colour or None)`` of every mask label, in the config's order."""
    try:
        root = ET.parse(path).getroot()  # expat refuses entity-expansion bombs (Python >= 3.7.1)
    except ET.ParseError as e:
        raise DataError(f"{path}: not valid XML ({e}); save the project's labelling config as it is") from None
    labels: dict[str, tuple[int, int, int] | None] = {}
    for tag in MASK_TAGS:
        for group in root.iter(tag):
            for label in group.iter("Label"):
                name = label.get("value")
                if not name:
                    raise DataError(f"{path}: a <Label> under <{tag}> has no value attribute")
                labels.setdefault(name, _color(label.get("background")))
    if not labels:
        raise DataError(f"{path}: no <Label> under {' or '.join(f'<{t}>' for t in MASK_TAGS)}; a segmentation "
                        "project labels with brushes or polygons")
    return list(labels.items())
