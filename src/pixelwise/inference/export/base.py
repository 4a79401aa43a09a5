"""The export-format registry, and what every exporter shares: ``export_checkpoint`` and ``read_model_meta``.

An exporter is a class registered with ``@register_exporter("name")``. It says which file it writes
(``suffix``, and ``title`` for messages) and implements two static methods: ``export(model, meta, path,
opset, overwrite) -> Path`` writes the model with its :class:`CheckpointMeta` inside, and
``read_meta(path) -> CheckpointMeta`` reads that metadata back. A backend that runs such files names
the format (``export_format = "onnx"``, see :mod:`pixelwise.inference.backends.base`).

>>> import tempfile
>>> from pathlib import Path
>>> destination = Path(tempfile.mkdtemp()) / "m.onnx"
>>> check_destination(destination, overwrite=False) == destination
True
>>> destination.touch()
>>> try:
...     check_destination(destination, overwrite=False)
... except ConfigError as e:
...     print(str(e).split(": ")[1])
already exists; pass --overwrite to replace it or choose another --out
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch.nn as nn

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.core.registry import Registry
from pixelwise.models.checkpoint import CheckpointMeta
from pixelwise.models.ensemble import Checkpoints, checkpoint_paths, load_checkpoints

OPSET = 18


class Exporter(ABC):
    """A file format a model can be exported to; subclasses set the attributes and both static methods."""

    suffix: str = ""  # of the file it writes, e.g. ".onnx"
    title: str = ""  # for messages, e.g. "ONNX"

    @staticmethod
    @abstractmethod
    def export(model: nn.Module, meta: CheckpointMeta, path: str | Path, opset: int = OPSET,
               overwrite: bool = False) -> Path:
        """Write ``model`` with ``meta`` inside to ``path``; returns ``path``."""

    @staticmethod
    @abstractmethod
    def read_meta(path: str | Path) -> CheckpointMeta:
        """The pixelwise metadata of a file this exporter wrote."""


EXPORTERS: Registry[type[Exporter]] = Registry("export format")


def register_exporter(name: str):
    """Decorator: register an :class:`Exporter` subclass as ``pixelwise export --format NAME``."""
    return EXPORTERS.register(name)


def list_export_formats() -> list[str]:
    """The registered export format names (``onnx``, ``openvino``, ...)."""
    return EXPORTERS.names()


def exporter_for_file(path: str | Path) -> type[Exporter] | None:
    """The exporter that writes files with ``path``'s suffix, or None (e.g. for a checkpoint)."""
    suffix = Path(path).suffix.lower()
    return next((EXPORTERS.get(name) for name in EXPORTERS if EXPORTERS.get(name).suffix == suffix), None)


def check_destination(path: str | Path, overwrite: bool) -> Path:
    """``path`` as a Path; an existing file there is an error unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: already exists; pass --overwrite to replace it or choose another --out")
    return path


def export_checkpoint(checkpoint: Checkpoints, out: str | Path | None = None, fmt: str = "onnx",
                      opset: int = OPSET, overwrite: bool = False) -> Path:
    """Export the model of a ``.safetensors`` checkpoint, or of a list of them as one graph that averages their
    logits (an ensemble); ``out`` defaults to the (first) checkpoint with the format's suffix, ``_ensemble``
    added to the name for an ensemble so that the first member's own export keeps its name."""
    exporter = EXPORTERS.get(fmt)
    paths = checkpoint_paths(checkpoint)
    model, meta = load_checkpoints(paths)
    if out is None:
        first = paths[0]
        out = first.with_suffix(exporter.suffix) if len(paths) == 1 else first.with_name(
            f"{first.stem}_ensemble{exporter.suffix}")
    return exporter.export(model, meta, out, opset, overwrite)


def read_model_meta(path: str | Path) -> CheckpointMeta:
    """The pixelwise metadata of an exported file (``.onnx``, OpenVINO ``.xml``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found")
    exporter = exporter_for_file(path)
    if exporter is None:
        known = ", ".join(EXPORTERS.get(name).suffix for name in EXPORTERS)
        raise ConfigError(f"{path}: not an exported model (those are {known} files); pass one or a checkpoint")
    return exporter.read_meta(path)
