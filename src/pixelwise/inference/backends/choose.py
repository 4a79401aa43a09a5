"""``open_backend``: which backend runs a source, read from what each registered backend says it runs.

>>> import tempfile
>>> from pathlib import Path
>>> checkpoint = Path(tempfile.mkdtemp()) / "best.safetensors"
>>> _ = checkpoint.write_bytes(b"weights")
>>> converted_path(checkpoint, ".onnx").name, converted_ir_path(checkpoint).name
('model.onnx', 'model.xml')
>>> auto_backend(checkpoint, torch.device("cpu"), num_images=1, compile=False)  # short job, no conversion
'torch'
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.device import resolve_device
from pixelwise.core.errors import ConfigError
from pixelwise.core.optional import is_installed
from pixelwise.core.version import __version__
from pixelwise.data.cache import cache_dir
from pixelwise.inference.backends.base import BACKENDS, Backend
from pixelwise.inference.export import EXPORTERS, exporter_for_file, read_model_meta
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint

AUTO_OPENVINO_MIN_IMAGES = 16


def converted_path(checkpoint: Path, suffix: str) -> Path:
    """Where the conversion of ``checkpoint`` to a ``suffix`` file is cached (keyed by its bytes and
    pixelwise's version, so a retrained checkpoint or a new pixelwise converts again)."""
    digest = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(__version__.encode())
    # The folder is called openvino for every format: where conversions have always been cached.
    return cache_dir() / "openvino" / digest.hexdigest()[:24] / f"model{suffix}"


def converted_ir_path(checkpoint: Path) -> Path:
    """Where the OpenVINO IR conversion of ``checkpoint`` is cached (what the ``auto`` rule looks for)."""
    return converted_path(checkpoint, ".xml")


def auto_backend(checkpoint: Path, device: torch.device, num_images: int | None, compile: bool) -> str:
    """The ``auto`` rule for a checkpoint: OpenVINO when on a CPU, installed, and its one-off conversion
    pays (a long job, or a conversion already cached); PyTorch otherwise, and always with ``compile``.

    Measured on the development CPU, OpenVINO ran a U-Net 1.9x faster than eager PyTorch fp32.
    """
    if compile or device.type != "cpu" or "openvino" not in BACKENDS or not is_installed("openvino"):
        return "torch"
    worth_it = (num_images or 0) >= AUTO_OPENVINO_MIN_IMAGES or converted_ir_path(checkpoint).is_file()
    return "openvino" if worth_it else "torch"


def open_backend(source: str | Path | nn.Module, backend: str = "auto", device: str = "auto",
                 precision: str = "auto", compile: bool = False, num_images: int | None = None) -> Backend:
    """The backend for a checkpoint, a model with ``.meta``, an ``.onnx`` or an OpenVINO ``.xml`` file."""
    if backend != "auto":
        BACKENDS.get(backend)  # an unknown name is one error line listing the known ones
    torch_device = resolve_device(device)
    if isinstance(source, nn.Module):
        meta = getattr(source, "meta", None)
        if not isinstance(meta, CheckpointMeta):
            raise ConfigError("the model has no .meta (classes, normalisation); load it with pixelwise.load_model")
        # A model in memory has no file to key a cached conversion by, so auto means PyTorch.
        chosen = BACKENDS.get("torch" if backend == "auto" else backend)
        return chosen.from_model(source, meta, torch_device, precision, compile)
    path = Path(source)
    if exporter_for_file(path) is not None:
        return open_exported(path, backend, precision)
    model, meta = load_checkpoint(path)
    chosen = BACKENDS.get(auto_backend(path, torch_device, num_images, compile) if backend == "auto" else backend)
    if chosen.export_format is None:
        return chosen.from_model(model, meta, torch_device, precision, compile)
    if chosen.cpu_only and torch_device.type != "cpu":
        raise ConfigError(f"--backend {chosen.name} runs on the CPU; use --backend torch for --device {device}")
    exporter = EXPORTERS.get(chosen.export_format)
    converted = converted_path(path, exporter.suffix)
    if not converted.is_file():
        exporter.export(model, meta, converted, overwrite=True)
    return chosen.from_file(converted, meta, precision)


def open_exported(path: Path, backend: str, precision: str) -> Backend:
    """An exported file on ``backend``; ``auto`` is the backend whose own format the file is."""
    meta = read_model_meta(path)
    suffix, title = path.suffix.lower(), exporter_for_file(path).title
    # The backends that run this kind of file, those whose own format it is first (stable sort).
    openers = sorted((name for name in BACKENDS if suffix in BACKENDS.get(name).suffixes()),
                     key=lambda name: BACKENDS.get(name).suffixes()[0] != suffix)
    if backend == "auto" and not openers:
        raise ConfigError(f"{path}: no backend runs {title} files; pass the .safetensors checkpoint")
    chosen = BACKENDS.get(openers[0] if backend == "auto" else backend)
    if suffix in chosen.suffixes():
        return chosen.from_file(path, meta, precision)
    if chosen.export_format is None or not openers:
        raise ConfigError(f"{path}: an exported model cannot run in {chosen.title}; pass the .safetensors checkpoint")
    raise ConfigError(f"{path}: {title} runs on --backend {' or '.join(openers)}; export "
                      f"{EXPORTERS.get(chosen.export_format).title} for {chosen.name}")
