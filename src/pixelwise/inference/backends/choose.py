"""``open_backend``: which backend runs a source, read from what each registered backend says it runs.

A list of checkpoints is an ensemble (:mod:`pixelwise.models.ensemble`): it runs in PyTorch unless a
backend is named, and an ensemble exported as one file (``pixelwise export A B``) runs like any other.

A checkpoint runs on a file backend (OpenVINO, onnxruntime) through a conversion of it: the one
``pixelwise train`` writes beside it (``best.xml`` + ``best.bin``, :func:`write_conversion_beside`), used
while the digest of the checkpoint's bytes recorded inside it still matches, else one made once and cached.

>>> import tempfile
>>> from pathlib import Path
>>> checkpoint = Path(tempfile.mkdtemp()) / "best.safetensors"
>>> _ = checkpoint.write_bytes(b"weights")
>>> converted_path(checkpoint, ".onnx").name, converted_ir_path(checkpoint).name
('model.onnx', 'model.xml')
>>> ready_conversion([checkpoint], "openvino") is None  # neither beside it nor cached
True
>>> auto_backend(checkpoint, torch.device("cpu"), num_images=1, compile=False)  # short job, no conversion
'torch'
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pixelwise.core.device import resolve_device
from pixelwise.core.errors import ConfigError, PixelwiseError
from pixelwise.core.optional import is_installed
from pixelwise.core.version import __version__
from pixelwise.data.cache import cache_dir
from pixelwise.inference.backends.base import BACKENDS, Backend
from pixelwise.inference.export import EXPORTERS, exporter_for_file, read_model_meta
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint, read_meta
from pixelwise.models.ensemble import Checkpoints, load_ensemble

# A checkpoint with no conversion ready is converted inside a predict job only when the job is long enough for
# OpenVINO's faster images to repay the conversion; below that, staying in PyTorch is faster. Measured on the
# development CPU (2 cores of a Xeon with AMX, bf16 in both runtimes), in CPU seconds on one thread, which other
# jobs on the machine barely change (wall times on it swung 10x with their load):
# * the CamVid recipe's U-Net (EfficientNet-Lite0, 240x320): converting took 3.7 s, an image 39 ms in PyTorch and
#   15 ms in OpenVINO: converting pays from 151 images on one core, about 300 on two (both runtimes halve);
# * a U-Net/ResNet-34 at 352x480: 2.4 s, 86 vs 40 ms: from 53 images on one core, about 106 on two; measured
#   whole on two quiet cores (benchmarks/bench_predict_process.py): 3.2 s, 70 vs 58 ms: from 262 images.
# 320 is above all of these: a job that converts is at worst about as fast as PyTorch, and a cached or
# train-written IR (no conversion at all) runs on OpenVINO from the first image. On a busy machine OpenVINO
# gains far more (PyTorch's threads suffer most from sharing cores: 1051 vs 112 ms an image), but the rule must
# not bet on that. Converting in the background while PyTorch predicts was not taken: on a 2-core CPU the
# conversion would take the cores PyTorch predicts on.
AUTO_OPENVINO_MIN_IMAGES = 320
# The key, in the metadata of a conversion written beside its checkpoint, of the checkpoint's digest.
SOURCE_DIGEST = "source_sha256"


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> Any:
    """The sha256 of a file's bytes, remembered per (path, size, time) so one job hashes a checkpoint once."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest


def checkpoint_digest(checkpoints: Sequence[Path], salt: str = "") -> str:
    """The hex sha256 of the checkpoints' bytes, in order (then ``salt``)."""
    paths = list(checkpoints)
    if len(paths) == 1:  # one checkpoint hashes as it always has, so earlier cached conversions still count
        stat = os.stat(paths[0])
        digest = _file_digest(str(Path(paths[0]).resolve()), stat.st_size, stat.st_mtime_ns).copy()
    else:
        digest = hashlib.sha256()
        for path in paths:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    digest.update(salt.encode())
    return digest.hexdigest()


def converted_path(checkpoint: Path | Sequence[Path], suffix: str) -> Path:
    """Where the conversion of ``checkpoint`` (or of the ensemble of several) to a ``suffix`` file is cached
    (keyed by their bytes and pixelwise's version, so a retrained checkpoint or a new pixelwise converts again)."""
    paths = [Path(checkpoint)] if isinstance(checkpoint, str | Path) else [Path(p) for p in checkpoint]
    # The folder is called openvino for every format: where conversions have always been cached.
    return cache_dir() / "openvino" / checkpoint_digest(paths, __version__)[:24] / f"model{suffix}"


def converted_ir_path(checkpoint: Path) -> Path:
    """Where the OpenVINO IR conversion of ``checkpoint`` is cached (what the ``auto`` rule looks for)."""
    return converted_path(checkpoint, ".xml")


def conversion_beside(checkpoint: Path, fmt: str) -> Path:
    """Where :func:`write_conversion_beside` puts ``checkpoint``'s conversion: its name with the format's suffix
    (``best.safetensors`` -> ``best.xml``), what ``pixelwise export`` names it too."""
    return Path(checkpoint).with_suffix(EXPORTERS.get(fmt).suffix)


def write_conversion_beside(checkpoint: Path, fmt: str = "openvino") -> Path:
    """Convert ``checkpoint`` to ``fmt`` beside it, recording the digest of its bytes, so that ``auto`` runs the
    file with no conversion for as long as the checkpoint is unchanged (``pixelwise train`` calls this)."""
    model, meta = load_checkpoint(checkpoint)
    meta.extra = {**meta.extra, SOURCE_DIGEST: checkpoint_digest([checkpoint])}
    return EXPORTERS.get(fmt).export(model, meta, conversion_beside(checkpoint, fmt), overwrite=True)


def ready_conversion(checkpoints: Sequence[Path], fmt: str) -> Path | None:
    """A conversion of exactly these checkpoints to ``fmt`` that runs at once: the one beside a single
    checkpoint when it records the checkpoint's digest, else the cached one; ``None`` when there is none."""
    paths = [Path(p) for p in checkpoints]
    if len(paths) == 1:
        beside = conversion_beside(paths[0], fmt)
        if beside.is_file():
            try:
                recorded = read_model_meta(beside).extra.get(SOURCE_DIGEST)
            except PixelwiseError:  # damaged, half copied, or a runtime missing: not usable, not an error here
                recorded = None
            if recorded == checkpoint_digest(paths):
                return beside
    cached = converted_path(paths, EXPORTERS.get(fmt).suffix)
    return cached if cached.is_file() else None


def auto_backend(checkpoint: Path, device: torch.device, num_images: int | None, compile: bool) -> str:
    """The ``auto`` rule for a checkpoint: OpenVINO on a CPU where it is installed and either a conversion is
    ready (written by ``train`` beside the checkpoint, or cached) or the job is long enough for a conversion to
    pay for itself (``AUTO_OPENVINO_MIN_IMAGES``); PyTorch otherwise, and always with ``compile``.
    """
    if compile or device.type != "cpu" or "openvino" not in BACKENDS or not is_installed("openvino"):
        return "torch"
    if ready_conversion([checkpoint], "openvino") is not None:
        return "openvino"
    return "openvino" if (num_images or 0) >= AUTO_OPENVINO_MIN_IMAGES else "torch"


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
    meta = read_meta(path)  # first: a missing or damaged checkpoint is the error, whatever the backend
    chosen = BACKENDS.get(auto_backend(path, torch_device, num_images, compile) if backend == "auto" else backend)
    ready = ready_conversion([path], chosen.export_format) if chosen.export_format is not None else None
    if ready is not None:  # no PyTorch model to build (nor timm to import): the start-up is the runtime's alone
        check_cpu_only(chosen, device)
        return chosen.from_file(ready, meta, precision)
    model, meta = load_checkpoint(path)
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
    check_cpu_only(chosen, device)
    exporter = EXPORTERS.get(chosen.export_format)
    converted = converted_path(checkpoints, exporter.suffix)
    if not converted.is_file():
        exporter.export(model, meta, converted, overwrite=True)
    return chosen.from_file(converted, meta, precision)


def check_cpu_only(chosen: type[Backend], device: str) -> None:
    """A ConfigError when ``chosen`` runs on the CPU only and ``device`` is not the CPU."""
    if chosen.cpu_only and resolve_device(device).type != "cpu":
        raise ConfigError(f"--backend {chosen.name} runs on the CPU; use --backend torch for --device {device}")


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
