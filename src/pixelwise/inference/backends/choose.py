"""``open_backend``: which backend runs a source, read from what each registered backend says it runs.

A list of checkpoints is an ensemble (:mod:`pixelwise.models.ensemble`): it runs in PyTorch unless a
backend is named, and an ensemble exported as one file (``pixelwise export A B``) runs like any other.

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
from collections.abc import Sequence
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
from pixelwise.models.ensemble import Checkpoints, load_ensemble

AUTO_OPENVINO_MIN_IMAGES = 16


def converted_path(checkpoint: Path | Sequence[Path], suffix: str) -> Path:
    """Where the conversion of ``checkpoint`` (or of the ensemble of several) to a ``suffix`` file is cached
    (keyed by their bytes and pixelwise's version, so a retrained checkpoint or a new pixelwise converts again)."""
    digest = hashlib.sha256()
    # One checkpoint hashes as it always has, so the conversions cached before ensembles existed still count.
    for path in [checkpoint] if isinstance(checkpoint, str | Path) else checkpoint:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
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


def open_backend(source: Checkpoints | nn.Module, backend: str = "auto", device: str = "auto",
                 precision: str = "auto", compile: bool = False, num_images: int | None = None) -> Backend:
    """The backend for a checkpoint, a list of checkpoints (an ensemble), a model with ``.meta``, an ``.onnx``
    or an OpenVINO ``.xml`` file."""
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
    if isinstance(source, list | tuple) and len(source) == 1:
        source = source[0]  # an ensemble of one is that checkpoint (or exported file) alone
    if isinstance(source, list | tuple):
        return open_ensemble([Path(p) for p in source], backend, device, precision, compile)
    path = Path(source)
    if exporter_for_file(path) is not None:
        return open_exported(path, backend, precision)
    model, meta = load_checkpoint(path)
    chosen = BACKENDS.get(auto_backend(path, torch_device, num_images, compile) if backend == "auto" else backend)
    return run_model(chosen, model, meta, [path], device, precision, compile)


def open_ensemble(paths: list[Path], backend: str, device: str, precision: str, compile: bool) -> Backend:
    """The ensemble of several checkpoints on ``backend``; ``auto`` is PyTorch.

    Not OpenVINO, even for a long job on a CPU: its conversion would be cached for this one combination of
    checkpoints (N exports for a cache entry that the next combination misses). To run an ensemble on
    another runtime often, export it once (``pixelwise export A B --out ensemble.onnx``) and run that file.
    """
    exported = next((p for p in paths if exporter_for_file(p) is not None), None)
    if exported is not None:
        raise ConfigError(f"{exported}: an exported model cannot join an ensemble; pass the .safetensors "
                          "checkpoints, or export the ensemble as one file with `pixelwise export A B`")
    model, meta = load_ensemble(paths)
    chosen = BACKENDS.get("torch" if backend == "auto" else backend)
    return run_model(chosen, model, meta, paths, device, precision, compile)


def run_model(chosen: type[Backend], model: nn.Module, meta: CheckpointMeta, checkpoints: list[Path], device: str,
              precision: str, compile: bool) -> Backend:
    """``model`` (loaded from ``checkpoints``) on ``chosen``: directly on a PyTorch backend, else after a
    conversion to the backend's format, cached by the checkpoints' bytes."""
    torch_device = resolve_device(device)
    if chosen.export_format is None:
        return chosen.from_model(model, meta, torch_device, precision, compile)
    if chosen.cpu_only and torch_device.type != "cpu":
        raise ConfigError(f"--backend {chosen.name} runs on the CPU; use --backend torch for --device {device}")
    exporter = EXPORTERS.get(chosen.export_format)
    converted = converted_path(checkpoints, exporter.suffix)
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
