"""The int8 quantizer registry (``pixelwise quantize --format NAME``), and what every quantizer is.

A quantizer is a :class:`Quantizer` subclass registered with ``@register_quantizer("name")``. It names the
export format it starts from (``export_format``: a checkpoint is exported to it first), the suffix of the
int8 file it writes, and the backend that runs that file; it implements ``quantize`` (fp32 file and
calibration inputs in, int8 file out) and ``write_meta`` (the pixelwise metadata, report included, into
the written file, where :func:`pixelwise.inference.export.read_model_meta` finds it).

>>> quantized_name(Path("best.safetensors"), ".xml").name
'best_int8.xml'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.core.registry import Registry
from pixelwise.data.classes import ClassSpec


@dataclass
class ValidationSet:
    """Batches of a labelled split (as :func:`pixelwise.inference.score.split_loader` makes them) and how to
    normalise their images: what the accuracy-aware mode scores a candidate int8 model on."""

    batches: Sequence[dict]
    classes: ClassSpec
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0  # the model's predict_scale: its normalised inputs are enlarged so, as predict feeds them


class Quantizer(ABC):
    """Post-training int8 quantization of an exported fp32 model."""

    name: str = ""  # set by @register_quantizer
    suffix: str = ""  # of the int8 file it writes
    backend: str = ""  # the --backend that runs that file
    export_format: str = ""  # the export format it quantizes (a checkpoint is exported to it first)
    accuracy_aware: bool = False  # whether it takes max_drop (keeps layers in floating point to meet it)

    @staticmethod
    @abstractmethod
    def check_installed() -> None:
        """One ConfigError line naming the pip extra when a library it needs is missing."""

    @staticmethod
    @abstractmethod
    def quantize(fp32: Path, calibration: Sequence[np.ndarray], out: Path, meta_json: str,
                 validation: ValidationSet | None = None, max_drop: float | None = None) -> dict:
        """Write the int8 model of ``fp32`` to ``out`` (calibrated on the normalised ``(1, 3, h, w)`` float32
        arrays of ``calibration``; with ``max_drop``, at most that many mIoU points lost on ``validation``);
        returns what was done (``mode``, ``float_layers``)."""

    @staticmethod
    @abstractmethod
    def write_meta(path: Path, meta_json: str) -> None:
        """Store ``meta_json`` as the pixelwise metadata of the file at ``path``."""


QUANTIZERS: Registry[type[Quantizer]] = Registry("--format", hint="see `pixelwise quantize --help`")


def register_quantizer(name: str):
    """Decorator: register a :class:`Quantizer` subclass as ``pixelwise quantize --format NAME``."""

    def add(cls: type[Quantizer]) -> type[Quantizer]:
        cls.name = name
        return QUANTIZERS.add(name, cls)

    return add


def list_quantizers() -> list[str]:
    """The registered quantizer names."""
    return QUANTIZERS.names()


def quantized_name(source: Path, suffix: str) -> Path:
    """Where the int8 model of ``source`` goes by default: beside it, ``_int8`` added to its name.

    >>> quantized_name(Path("runs/camvid/best.safetensors"), ".xml").as_posix()
    'runs/camvid/best_int8.xml'
    """
    return source.with_name(f"{source.stem}_int8{suffix}")
