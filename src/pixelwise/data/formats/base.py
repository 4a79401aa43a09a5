"""The dataset-format registry and what every format shares: the index of samples, stem matching,
splits, ``--format NAME:key=value`` options and auto-detection.

A format is one module with a decorated ``open`` function (see CONTRIBUTING.md)::

    @register_format("myformat", detect=lambda root: (root / "my_masks").is_dir(), description="...")
    def open_myformat(root, classes, options) -> DatasetIndex: ...

>>> sorted(FORMATS.names()) == sorted(list_formats())
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from pixelwise.core.errors import ConfigError, DataError
from pixelwise.core.registry import Registry
from pixelwise.data.classes import ClassSpec
from pixelwise.data.infer_classes import infer_classes, no_classes_error
from pixelwise.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from pixelwise.data.presets import get_preset, resolve_classes
from pixelwise.data.sample import Sample, SampleReader

SPLITS = ("train", "val", "test")


@dataclass
class DatasetIndex:
    """What a format found: the samples of each split, the classes, and how to read a sample."""

    root: Path
    format: str
    classes: ClassSpec
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    reader: SampleReader | None = None  # None: index-mask files
    # Lines for the user about how the data was read (e.g. classes inferred from the masks); the data
    # layer prints nothing, its callers (train, inspect) show these.
    notes: list[str] = field(default_factory=list)
    classes_inferred: bool = False  # no classes.yaml nor --classes: read off the masks (the trainer saves them)

    def __post_init__(self) -> None:
        if self.reader is None:
            self.reader = SampleReader(self.classes)

    def split(self, name: str) -> list[Sample]:
        samples = self.splits.get(name, [])
        if not samples:
            found = ", ".join(f"{k} ({len(v)})" for k, v in self.splits.items() if v) or "none"
            raise DataError(f"{self.root}: split '{name}' is empty or missing (splits found: {found})")
        return samples


def safe_join(folder: Path, name: str, source: Path) -> Path:
    """``folder / name`` for a file name read from a dataset's own files (``source``: a COCO JSON, a CSV),
    refused when it would reach outside ``folder``: an absolute path, a ``..`` step, or a symlink whose
    target lies outside. A downloaded annotation file can then never make pixelwise read other files.

    >>> safe_join(Path("data/images"), "a/b.png", Path("ann.json")).as_posix()
    'data/images/a/b.png'
    >>> try:
    ...     safe_join(Path("data/images"), "../../secret.png", Path("ann.json"))
    ... except DataError as e:
    ...     print(e)
    ann.json: the file name '../../secret.png' points outside data/images; refused (names are relative to it)
    """
    parts = Path(name).parts
    if Path(name).is_absolute() or PureWindowsPath(name).is_absolute() or ".." in parts:
        raise DataError(f"{source}: the file name {name!r} points outside {folder}; refused (names are "
                        "relative to it)")
    path = folder / name
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{source}: {path} is a symlink to {path.resolve()}, outside {folder}; refused "
                        "(copy the file into the dataset instead)")
    return path


def files_by_stem(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """Files of a folder keyed by stem (hidden files skipped)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")}


def pair_by_stem(image_dir: Path, mask_dir: Path, stems: list[str] | None = None, mask_suffix: str = ""
                 ) -> list[Sample]:
    """Match images and masks by stem (a mask's stem may carry ``mask_suffix``, e.g. CamVid's ``_L``);
    any unpaired file is an error naming it."""
    images = files_by_stem(image_dir, IMAGE_EXTENSIONS)
    masks = {s.removesuffix(mask_suffix): p for s, p in files_by_stem(mask_dir, MASK_EXTENSIONS).items()
             if s.endswith(mask_suffix)}
    if stems is not None:
        missing = [s for s in stems if s not in images]
        if missing:
            raise DataError(f"{image_dir}: '{missing[0]}' is listed in a split file but has no image "
                            f"({len(missing)} missing); fix the list or add the image")
        images = {s: images[s] for s in stems}
        masks = {s: masks[s] for s in stems if s in masks}
    no_mask = [p for s, p in images.items() if s not in masks]
    if no_mask:
        raise DataError(f"{no_mask[0]}: image has no mask in {mask_dir} ({len(no_mask)} such images); "
                        "add the mask or remove the image")
    no_image = [p for s, p in masks.items() if s not in images]
    if no_image:
        raise DataError(f"{no_image[0]}: mask has no image in {image_dir} ({len(no_image)} such masks); "
                        "add the image or remove the mask")
    return [Sample(images[s], masks[s]) for s in sorted(images)]


def split_samples(root: Path, samples: list[Sample]) -> dict[str, list[Sample]]:
    """Splits of a layout without split folders: ``train.txt`` / ``val.txt`` / ``test.txt`` (image stems)
    beside the data when present, else every 10th image (sorted by name, at least one) held out as ``val``."""
    lists = {s: root / f"{s}.txt" for s in SPLITS if (root / f"{s}.txt").is_file()}
    if lists:
        by_stem = {s.image.stem: s for s in samples}
        return {split: [by_stem[stem] for stem in read_list(path) if stem in by_stem] for split, path in lists.items()}
    # Every 10th image, spread over the sorted names; a set under 10 images still gets one.
    held_out = {i for i in range(len(samples)) if i % 10 == 9} or ({len(samples) - 1} if len(samples) > 1 else set())
    return {"train": [x for i, x in enumerate(samples) if i not in held_out],
            "val": [x for i, x in enumerate(samples) if i in held_out]}


def read_list(path: Path) -> list[str]:
    """Stems from a split file; lines may be bare stems ("frame.001") or file names ("frame.001.png")."""
    stems = []
    for line in path.read_text().splitlines():
        name = Path(line.strip()).name
        if name:
            stems.append(Path(name).stem if name.lower().endswith(IMAGE_EXTENSIONS) else name)
    return stems


ClassesArg = str | Path | ClassSpec | None


OpenFn = Callable[[Path, ClassesArg, dict[str, str]], DatasetIndex]


@dataclass(frozen=True)
class Format:
    """A dataset layout: how to recognise it and how to open it.

    ``open(root, classes, options)`` returns the :class:`DatasetIndex`; ``classes`` is what the user gave
    with ``--classes`` (preset name, yaml path or :class:`ClassSpec`) or None for the format's default;
    ``options`` come from ``--format NAME:key=value,key=value`` (see :func:`parse_format`).
    """

    name: str
    detect: Callable[[Path], bool]
    open: OpenFn
    description: str = ""
    detect_order: int = 50  # auto-detection tries low numbers first: specific layouts before generic ones


FORMATS: Registry[Format] = Registry("--format", hint="see the README's table of layouts")


def register_format(name: str, detect: Callable[[Path], bool], description: str, detect_order: int = 50
                    ) -> Callable[[OpenFn], OpenFn]:
    """Decorator: register ``open(root, classes, options) -> DatasetIndex`` as the layout ``name``.

    ``detect(root)`` says whether a folder looks like this layout; ``detect_order`` sets when
    auto-detection asks (low first: specific layouts before generic ones such as ``folders``).
    """

    def add(open_fn: OpenFn) -> OpenFn:
        FORMATS.add(name, Format(name, detect, open_fn, description, detect_order))
        return open_fn

    return add


def list_formats() -> list[str]:
    """Format names in auto-detection order."""
    return [f.name for f in sorted((FORMATS.get(n) for n in FORMATS), key=lambda f: f.detect_order)]


def given_classes(root: Path, classes: ClassesArg) -> ClassSpec | None:
    """``--classes`` if given, else ``classes.yaml`` beside the data, else None."""
    return classes if isinstance(classes, ClassSpec) else resolve_classes(classes, root)


def classes_or_default(root: Path, classes: ClassesArg, default: str | None) -> ClassSpec:
    """``--classes`` if given, else ``classes.yaml`` beside the data, else the format's preset."""
    spec = given_classes(root, classes)
    if spec is None and default:
        spec = get_preset(default)
    if spec is None:
        raise no_classes_error(root)
    return spec


def index_with_classes(root: Path, fmt: str, classes: ClassesArg, splits: dict[str, list[Sample]]) -> DatasetIndex:
    """The index of an index-mask layout without a preset: its classes are ``--classes`` if given, else
    ``classes.yaml`` beside the data, else inferred from the masks where they are unambiguous (with a
    note saying so; see :mod:`pixelwise.data.infer_classes`), else a DataError saying what the masks hold."""
    spec = given_classes(root, classes)
    if spec is not None:
        return DatasetIndex(root, fmt, spec, splits)
    masks = sorted({s.mask for samples in splits.values() for s in samples if s.mask is not None})
    inferred = infer_classes(masks, root)
    return DatasetIndex(root, fmt, inferred.spec, splits, notes=[inferred.note], classes_inferred=True)


def parse_format(text: str) -> tuple[str, dict[str, str]]:
    """``"pets:border=pet,x=1"`` -> ``("pets", {"border": "pet", "x": "1"})``."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--format {text}: options are written NAME:key=value,key=value")
        options[key.strip()] = value.strip()
    return name.strip(), options


def take_options(fmt: str, options: dict[str, str], allowed: dict[str, tuple[str, ...] | None]) -> dict[str, str]:
    """Check a format's options: known keys, and values from a fixed list where there is one."""
    for key, value in options.items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise ConfigError(f"--format {fmt}: unknown option '{key}' (options: {known})")
        choices = allowed[key]
        if choices is not None and value not in choices:
            raise ConfigError(f"--format {fmt}: {key}={value} is not one of {', '.join(choices)}")
    return options


def detect_format(root: Path) -> str:
    for name in list_formats():
        if FORMATS.get(name).detect(root):
            return name
    raise DataError(f"{root}: no dataset layout recognised; expected one of: "
                    + "; ".join(f"{n} ({FORMATS.get(n).description})" for n in list_formats()))


def open_dataset(root: str | Path, format: str = "auto", classes: ClassesArg = None) -> DatasetIndex:
    """Find the samples and classes of the dataset at ``root``.

    ``classes`` is a preset name, a classes.yaml path or a :class:`ClassSpec`; by default the
    ``classes.yaml`` beside the data, else the format's preset.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; check the path (it must be a folder)")
    format, options = parse_format(format)
    if format == "auto":
        format = detect_format(root)
    if format not in FORMATS:
        raise ConfigError(f"unknown --format '{format}'; choose one of auto, {', '.join(list_formats())}")
    index = FORMATS.get(format).open(root, classes, options)
    if not any(index.splits.values()):
        raise DataError(f"{root}: no image/mask pairs found in the {format} layout")
    return index
