"""Label Studio's JSON export: brush and polygon regions painted into semantic masks.

The layout (auto-detected): the export, a ``*.json`` file holding a list of tasks (Label Studio 1.x,
"Export > JSON"), beside an ``images/`` folder; optionally the project's labelling config, saved as
``label_config.xml``. Each task is ``{"id", "data": {"image": ...}, "annotations": [...], "predictions": [...]}``;
an annotation's ``result`` holds regions of type ``brushlabels`` (``value.rle``, Label Studio's RLE) and
``polygonlabels`` (``value.points`` in percent); other result types (boxes, choices) are skipped, counted
in a note. How regions are painted: :mod:`pixelwise.data.formats.label_studio_masks`.

Images: the task's image reference (``data.image``, else the only text in ``data``) is matched to a
file, in this order: a relative path under the data folder; else its file name in ``images/`` (or the data
folder), first as it is, then without the 8-hex-digit prefix Label Studio gives uploads
(``/data/upload/3/1a2b3c4d-photo.jpg`` is ``images/photo.jpg``); ``/data/local-files/?d=PATH`` is
``PATH``. An unmatched task is an error naming it.

Which annotation of a task: cancelled (skipped) ones never count; of the others, the latest (by
``updated_at``, else ``created_at``; of equal times the later in the list), or with ``--format
label-studio:annotator=EMAIL_OR_ID`` that annotator's latest (a task they did not annotate is skipped). A
task without any annotation is not labelled yet and is skipped (counted in a note).
``source=predictions`` reads the tasks' predictions instead (the latest of each); ``source=auto``, the
default, does so only when no task has an annotation, e.g. a pre-annotation file written by ``pixelwise
predict --to label-studio``.

Classes: with ``--classes`` or a ``classes.yaml``, a region's label is matched to a class by name; else
background first, then the labels of ``label_config.xml`` (``<BrushLabels>`` / ``<PolygonLabels>``, in
their order, with their ``background`` colours), else the labels found in the export, sorted by name.
A label named ``background`` is class 0 rather than a class of its own. Splits: ``train.txt`` /
``val.txt`` (image stems) beside the export, else every 10th image goes to val. Options: ``json=NAME``
(when the folder holds several exports), ``annotator=``, ``source=auto|annotations|predictions``.

>>> detect_label_studio(Path("/nonexistent"))
False
>>> strip_upload_prefix("1a2b3c4d-photo.jpg"), strip_upload_prefix("photo.jpg")
('photo.jpg', 'photo.jpg')
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.classes import ClassSpec, default_palette
from pixelwise.data.formats import base
from pixelwise.data.formats.label_studio_config import read_label_config
from pixelwise.data.formats.label_studio_masks import LabelStudioReader, Region
from pixelwise.data.sample import Sample

MASK_TYPES = {"brushlabels": "brush", "polygonlabels": "polygon"}
_UPLOAD_PREFIX = re.compile(r"^[0-9a-fA-F]{8}-(.+)$")


def strip_upload_prefix(name: str) -> str:
    """``1a2b3c4d-photo.jpg`` -> ``photo.jpg``: the name before Label Studio prefixed it on upload."""
    match = _UPLOAD_PREFIX.match(name)
    return match.group(1) if match else name


def _looks_like_export(path: Path) -> bool:
    """A JSON list of tasks: its first 64 kB open a list and name ``data`` and annotations or predictions."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return head.lstrip()[:1] == b"[" and b'"data"' in head and (b'"annotations"' in head or b'"predictions"' in head)


def exports(root: Path) -> list[Path]:
    return [p for p in sorted(root.glob("*.json")) if _looks_like_export(p)] if root.is_dir() else []


def detect_label_studio(root: Path) -> bool:
    return bool(exports(root))


def load_tasks(path: Path) -> list[dict]:
    """The tasks of an export, checked to be a list of objects with ``data``."""
    try:
        tasks = json.loads(path.read_bytes())
    except OSError as e:
        raise DataError(f"{path}: cannot read this file ({e.strerror})") from None
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(tasks, list):
        raise DataError(f"{path}: not a Label Studio JSON export (a list of tasks); export the project as JSON")
    for n, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"{path}: task {n} has no 'data' object; export the project as JSON (not JSON-MIN)")
    return tasks


def _image_ref(path: Path, task: dict) -> str:
    data = task["data"]
    texts = [v for v in data.values() if isinstance(v, str)]
    ref = data.get("image", texts[0] if len(texts) == 1 else None)
    if not isinstance(ref, str) or not ref:
        raise DataError(f"{path}: task {task.get('id')}: no image in data (expected data.image); found keys "
                        f"{', '.join(map(str, data)) or 'none'}")
    return ref


def find_image(root: Path, path: Path, task: dict) -> Path:
    """The image file of a task (see the module docstring for the order of the places looked in)."""
    ref = _image_ref(path, task)
    url = urlparse(ref)
    local = parse_qs(url.query).get("d", [None])[0] if url.path.endswith("local-files/") else None
    relative = local or (ref if not url.scheme and not ref.startswith("/") else None)
    if relative and not Path(relative).is_absolute() and ".." not in Path(relative).parts:
        candidate = base.safe_join(root, unquote(relative), path)
        if candidate.is_file():
            return candidate
    name = Path(unquote(local or url.path)).name
    names = list(dict.fromkeys([name, strip_upload_prefix(name)]))
    for folder in (root / "images", root):
        for candidate_name in names:
            if candidate_name and (folder / candidate_name).is_file():
                return base.safe_join(folder, candidate_name, path)
    raise DataError(f"{path}: task {task.get('id')}: its image {ref!r} is not in {root / 'images'} (looked for "
                    f"{' and '.join(names)}); copy the labelled images there")


def _time(item: dict) -> datetime | None:
    for key in ("updated_at", "created_at"):
        try:
            return datetime.fromisoformat(str(item[key]))
        except (KeyError, ValueError):
            continue
    return None


def _by_annotator(annotation: dict, who: str) -> bool:
    """Whether ``who`` (an email or a user id) made the annotation (``completed_by``: an id or a user object)."""
    user = annotation.get("completed_by")
    found = {str(user.get("id")), str(user.get("email"))} if isinstance(user, dict) else {str(user)}
    found.add(str(annotation.get("created_username", "")).split(",")[0].strip())
    return who in found


def choose(items: list[Any], annotator: str | None = None) -> dict | None:
    """The latest usable annotation (or prediction) of a task; None when there is none."""
    usable = [(n, a) for n, a in enumerate(items) if isinstance(a, dict) and not a.get("was_cancelled")
              and isinstance(a.get("result", []), list) and (annotator is None or _by_annotator(a, annotator))]
    if not usable:
        return None
    times = [_time(a) for _, a in usable]
    if None in times or len({t.tzinfo is None for t in times}) > 1:  # no times, or ones that do not compare
        return usable[-1][1]
    return max(zip(times, usable, strict=True), key=lambda t: (t[0], t[1][0]))[1][1]


def _label(path: Path, task: dict, result: dict) -> str:
    labels = result.get("value", {}).get(result["type"]) if isinstance(result.get("value"), dict) else None
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        raise DataError(f"{path}: task {task.get('id')}: a {result['type']} region has labels {labels!r}; a "
                        "semantic mask needs exactly one label per region")
    return labels[0]


def _regions(path: Path, task: dict, annotation: dict, class_of: dict[str, int], skipped: dict[str, int]
             ) -> list[Region]:
    regions = []
    for result in annotation.get("result", []):
        kind = MASK_TYPES.get(str(result.get("type", "")).lower()) if isinstance(result, dict) else None
        if kind is None:
            what = result.get("type", "?") if isinstance(result, dict) else type(result).__name__
            skipped[str(what)] = skipped.get(str(what), 0) + 1
            continue
        result = {**result, "type": str(result["type"]).lower()}
        value = result.get("value", {})
        data = value.get("rle") if kind == "brush" else value.get("points")
        if kind == "brush":
            if value.get("format", "rle") != "rle" or not isinstance(data, list):
                raise DataError(f"{path}: task {task.get('id')}: a brush region has no value.rle list")
            try:
                data = bytes(data)
            except (TypeError, ValueError):
                raise DataError(f"{path}: task {task.get('id')}: value.rle must be bytes (integers 0..255)") from None
        sizes = [result.get("original_height"), result.get("original_width")]
        height, width = (int(s) for s in sizes) if all(isinstance(s, int) for s in sizes) else (None, None)
        regions.append(Region(class_of[_label(path, task, result)], kind, data, height, width))
    return regions


def _classes(root: Path, classes: base.ClassesArg, labels: list[str]) -> tuple[ClassSpec, list[str]]:
    """The class spec and a note on where it came from (see the module docstring)."""
    spec = base.given_classes(root, classes)
    if spec is not None:
        return spec, []
    config = read_label_config(root / "label_config.xml") if (root / "label_config.xml").is_file() else None
    found = config or [(name, None) for name in sorted(set(labels))]
    named = {name.lower(): (name, color) for name, color in found}
    back = named.get("background", ("background", (0, 0, 0)))
    others = [(n, c) for n, c in found if n.lower() != "background"]
    palette = default_palette(len(others))
    names = [back[0], *(n for n, _ in others)]
    colors = [back[1] or (0, 0, 0), *(c or palette[k] for k, (_, c) in enumerate(others))]
    spec = ClassSpec.from_lists(names, colors)
    if config:
        return spec, []
    return spec, [f"classes: background + the {len(others)} labels found in the export, sorted by name; save the "
                  "project's labelling config as label_config.xml to keep its order and colours"]


def _pick(path: Path, tasks: list[dict], source: str, annotator: str | None) -> tuple[list[tuple[dict, dict]], str]:
    """``(task, annotation)`` of each labelled task, and which list they came from."""
    if source == "auto":
        source = "annotations" if any(t.get("annotations") for t in tasks) else "predictions"
    if source == "predictions" and annotator is not None:
        raise ConfigError(f"{path}: annotator={annotator} picks among annotations, but the predictions are read (no "
                          "task has an annotation, or source=predictions); drop annotator=")
    picked = []
    for task in tasks:
        items = task.get(source) or []
        chosen = choose(items if isinstance(items, list) else [], annotator)
        if chosen is not None:
            picked.append((task, chosen))
    return picked, source


def _export_path(root: Path, options: dict[str, str]) -> Path:
    if "json" in options:
        path = base.safe_join(root, options["json"], root / "--format")
        if not path.is_file():
            raise DataError(f"{path}: Label Studio export not found (--format label-studio:json=NAME is relative "
                            f"to {root})")
        return path
    found = exports(root)
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ConfigError(f"{root}: choose the export with --format label-studio:json=NAME (Label Studio "
                          f"exports found: {names})")
    return found[0]


@base.register_format("label-studio", detect=detect_label_studio, detect_order=36,
                      description="Label Studio JSON export (brush + polygon labels) beside images/")
def open_label_studio(root: Path, classes: base.ClassesArg, options: dict[str, str]) -> base.DatasetIndex:
    """Classes: background, then label_config.xml's labels (else the export's, sorted). Brush RLE and
    polygons; options ``json=``, ``annotator=``, ``source=auto|annotations|predictions``."""
    options = base.take_options("label-studio", options, {
        "json": None, "annotator": None, "source": ("auto", "annotations", "predictions")})
    path = _export_path(root, options)
    tasks = load_tasks(path)
    picked, source = _pick(path, tasks, options.get("source", "auto"), options.get("annotator"))
    if not picked:
        who = f" by {options['annotator']}" if "annotator" in options else ""
        raise DataError(f"{path}: none of its {len(tasks)} tasks has a usable {source[:-1]}{who}; label some "
                        "tasks (or read predictions with --format label-studio:source=predictions)")
    labels = [_label(path, t, r) for t, a in picked for r in a.get("result", [])
              if isinstance(r, dict) and str(r.get("type", "")).lower() in MASK_TYPES]
    spec, notes = _classes(root, classes, labels)
    class_of = {name: k for k, name in enumerate(spec.names)}
    class_of.setdefault("background", 0)
    unknown = sorted(set(labels) - set(class_of))
    if unknown:
        raise DataError(f"{path}: label {unknown[0]!r} is not one of the classes ({', '.join(spec.names)}); add it "
                        "to classes.yaml / label_config.xml or pass the right --classes")
    skipped: dict[str, int] = {}
    records: dict[str, tuple[str, list]] = {}
    samples = []
    for task, chosen in picked:
        image = find_image(root, path, task)
        where = f"{path}: task {task.get('id')} ({source[:-1]} {chosen.get('id')})"
        if str(image) in records:
            raise DataError(f"{where}: its image {image} is also the image of another task ({records[str(image)][0]}); "
                            "remove the duplicate task")
        records[str(image)] = (where, _regions(path, task, chosen, class_of, skipped))
        samples.append(Sample(image, path))
    if len(picked) < len(tasks):
        notes.append(f"{path.name}: {len(tasks) - len(picked)} of {len(tasks)} tasks have no usable {source[:-1]} "
                     "and are left out")
    if source == "predictions" and options.get("source") != "predictions":
        notes.append(f"{path.name}: no task has an annotation, so the predictions were read")
    if skipped:
        notes.append(f"{path.name}: skipped regions that are not masks: "
                     + ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items())))
    samples.sort(key=lambda s: str(s.image))
    return base.DatasetIndex(root, "label-studio", spec, base.split_samples(root, samples),
                             LabelStudioReader(spec, records), notes=notes)
