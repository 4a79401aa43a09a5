"""The backend registry, and what every backend is: ``backend(images) -> logits`` plus ``backend.meta``.

A backend is a :class:`Backend` subclass registered with ``@register_backend("name")``. It says what it
runs with one class attribute, ``export_format``:

* ``None`` (the default): a PyTorch model, in this process. It implements :meth:`Backend.from_model`;
  checkpoints and models with ``.meta`` run on it directly.
* the name of an export format (``"onnx"``, ``"openvino"``; see :mod:`pixelwise.inference.export`):
  exported files of that format, plus the suffixes in ``also_opens``. It implements
  :meth:`Backend.from_file`; a checkpoint runs on it after a one-time conversion to that format
  (cached, so the next run starts at once).

``cpu_only`` backends refuse ``--device cuda``. :func:`pixelwise.inference.backends.open_backend`
reads these attributes to route a source to a backend; it has no code for any one backend.

>>> class Identity(Backend):  # a toy; a real one is decorated with @register_backend("name")
...     def __call__(self, images):
...         return images.float()
>>> Identity.suffixes(), Identity.export_format is None
((), True)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError
from pixelwise.core.registry import Registry
from pixelwise.inference.export import EXPORTERS
from pixelwise.models.checkpoint import CheckpointMeta


class Backend(ABC):
    """A runtime for a model: float ``(N, C, H, W)`` normalised images in, float32 logits
    ``(N, num_classes, H, W)`` out; ``meta`` is the model's :class:`CheckpointMeta`."""

    name: str = ""  # set by @register_backend
    title: str = ""  # for messages, e.g. "PyTorch"
    export_format: str | None = None  # None: runs PyTorch models; else the export format it runs
    also_opens: tuple[str, ...] = ()  # suffixes of other exported files it runs, e.g. (".onnx",)
    cpu_only: bool = False
    precision: str = "fp32"  # what it computes in (the predictor logs it)
    overlaps: bool = False  # run_batches runs the model while the caller works: predict_files pipelines then
    concurrent_calls: bool = False  # __call__ may run on several threads at once (a server overlaps requests)
    meta: CheckpointMeta

    @abstractmethod
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of normalised images."""

    def run_batches(self, batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Logits for each batch, in order; a backend that can run the next batch while the caller turns
        these logits into labels overrides this and sets ``overlaps`` (OpenVINO does). The default: one call
        after another.

        >>> class Double(Backend):
        ...     def __call__(self, images):
        ...         return 2 * images
        >>> [x.item() for x in Double().run_batches(torch.ones(3, 1))]
        [2.0, 2.0, 2.0]
        """
        for images in batches:
            yield self(images)

    @classmethod
    def suffixes(cls) -> tuple[str, ...]:
        """The suffixes of the exported files it runs (none for a PyTorch backend)."""
        if cls.export_format is None:
            return ()
        return (EXPORTERS.get(cls.export_format).suffix, *cls.also_opens)

    @classmethod
    def from_model(cls, model: nn.Module, meta: CheckpointMeta, device: torch.device, precision: str,
                   compile: bool = False) -> Backend:
        """A backend running ``model``; one that runs exported files cannot, and says so."""
        raise ConfigError(f"--backend {cls.name} needs an exported file; run `pixelwise export` first")

    @classmethod
    def from_file(cls, path: Path, meta: CheckpointMeta, precision: str = "auto") -> Backend:
        """A backend running the exported file ``path`` (one of :meth:`suffixes`)."""
        raise TypeError(f"{cls.__name__} sets export_format = {cls.export_format!r}, so it must define from_file")


BACKENDS: Registry[type[Backend]] = Registry("--backend", hint="or auto, the fastest available")


def quantized_precision(meta: CheckpointMeta, float_precision: str) -> str:
    """What a model file computes in, as backends report it: ``"int8+bf16"`` for a model ``pixelwise quantize``
    wrote (its metadata holds the int8 report; the layers it kept in floating point run in ``float_precision``),
    else ``float_precision``.

    >>> from types import SimpleNamespace as Meta
    >>> quantized_precision(Meta(extra={"int8": {}}), "bf16"), quantized_precision(Meta(extra={}), "fp32")
    ('int8+bf16', 'fp32')
    """
    return f"int8+{float_precision}" if "int8" in meta.extra else float_precision


def register_backend(name: str):
    """Decorator: register a :class:`Backend` subclass as ``pixelwise predict --backend NAME``."""

    def add(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        return BACKENDS.add(name, cls)

    return add


def list_backends() -> list[str]:
    """The registered backend names (``auto`` is not one: it picks among them)."""
    return BACKENDS.names()
