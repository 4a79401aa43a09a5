"""Runtimes that turn a batch of normalised images into logits: PyTorch, onnxruntime and OpenVINO.

Every backend is called the same way, ``backend(images) -> logits`` with float ``(N, C, H, W)`` in
and float32 ``(N, num_classes, H, W)`` out, and carries the model's metadata as ``backend.meta``,
so the predictor does not care which one runs.

``open_backend(source, "auto")`` picks the fastest one available for ``source``:

* a ``.xml`` file (OpenVINO IR) runs on OpenVINO, a ``.onnx`` file on onnxruntime;
* a checkpoint on a GPU runs in PyTorch (bf16/fp16 autocast per ``--precision``);
* a checkpoint on a CPU runs on OpenVINO when it is installed and the job is big enough to pay for
  the one-time conversion (``AUTO_OPENVINO_MIN_IMAGES`` images, or a conversion already in the
  cache); measured on the development CPU OpenVINO ran a U-Net 1.9x faster than eager PyTorch fp32.
  Otherwise PyTorch.

>>> import pixelwise, torch
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> model.meta = CheckpointMeta.for_model(model, get_preset("binary"))
>>> backend = open_backend(model, "torch", precision="fp32")
>>> backend.name, backend(torch.zeros(1, 3, 20, 30)).shape
('torch', torch.Size([1, 2, 20, 30]))
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn as nn

from pixelwise.core.device import autocast, compile_or_eager, cpu_has_fast_bf16, resolve_device, resolve_precision
from pixelwise.core.errors import ConfigError
from pixelwise.core.version import __version__
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
AUTO_OPENVINO_MIN_IMAGES = 16


class Backend(Protocol):
    name: str
    meta: CheckpointMeta

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """Eager (or ``torch.compile``-d) PyTorch with autocast and channels_last where they pay."""

    name = "torch"

    def __init__(self, model: nn.Module, meta: CheckpointMeta, device: torch.device, precision: str,
                 compile: bool = False) -> None:
        self.meta, self.device, self.precision = meta, device, precision
        self.channels_last = precision != "fp32"
        self.model = model.to(device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = compile_or_eager(self.model) if compile else self.model

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            return self.forward(images).float()


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, meta: CheckpointMeta) -> None:
        ort = _import("onnxruntime", "onnx")
        self.meta = meta
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"image": images.float().cpu().numpy()})
        return torch.from_numpy(logits)


class OpenVinoBackend:
    """OpenVINO on the CPU; bf16 inference where the CPU has native bf16 and precision allows it."""

    name = "openvino"

    def __init__(self, path: Path, meta: CheckpointMeta, precision: str = "auto") -> None:
        _import("openvino", "openvino")
        self.meta = meta
        if precision == "fp16":
            raise ConfigError("--precision fp16 needs a CUDA GPU; OpenVINO on a CPU runs bf16 or fp32")
        bf16 = precision == "bf16" or (precision == "auto" and cpu_has_fast_bf16())
        config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY"}
        self.precision = "bf16" if bf16 else "fp32"
        self.compiled = openvino_core().compile_model(str(path), "CPU", config)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # Copies both ways: by default OpenVINO keeps pointing at the input array inside its infer request
        # after the call, and that array is freed once we return (this crashed the process later on).
        logits = self.compiled(images.float().cpu().numpy(), share_inputs=False, share_outputs=False)[0]
        return torch.from_numpy(np.array(logits, dtype=np.float32, copy=True))


def _import(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(f"this backend needs '{module}'; pip install 'pixelwise[{extra}]' or use "
                          "--backend torch") from None


_OPENVINO_CORE = None


def openvino_core():
    """One OpenVINO ``Core`` for the whole process, never destroyed.

    A compiled model must not outlive the Core that loaded its plugin: with a throwaway ``Core()`` the
    process crashed later, at a random point (SIGSEGV), once the plugin's code had been unloaded.
    """
    global _OPENVINO_CORE
    if _OPENVINO_CORE is None:
        import openvino as ov

        _OPENVINO_CORE = ov.Core()
    return _OPENVINO_CORE


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def converted_ir_path(checkpoint: Path) -> Path:
    """Where the OpenVINO conversion of ``checkpoint`` is cached (keyed by its bytes and pixelwise's version)."""
    from pixelwise.data.cache import cache_dir

    digest = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(__version__.encode())
    return cache_dir() / "openvino" / digest.hexdigest()[:24] / "model.xml"


def open_backend(source: str | Path | nn.Module, backend: str = "auto", device: str = "auto",
                 precision: str = "auto", compile: bool = False, num_images: int | None = None) -> Backend:
    """The backend for a checkpoint, a model with ``.meta``, an ``.onnx`` or an OpenVINO ``.xml`` file."""
    from pixelwise.inference.export import export_openvino, read_model_meta

    if backend not in BACKENDS:
        raise ConfigError(f"unknown --backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    torch_device = resolve_device(device)
    if isinstance(source, nn.Module):
        meta = getattr(source, "meta", None)
        if not isinstance(meta, CheckpointMeta):
            raise ConfigError("the model has no .meta (classes, normalisation); load it with pixelwise.load_model")
        if backend not in ("auto", "torch"):
            raise ConfigError(f"--backend {backend} needs an exported file; run `pixelwise export` first")
        return TorchBackend(source, meta, torch_device, resolve_precision(precision, torch_device), compile)

    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".xml"):
        meta = read_model_meta(path)
        if backend == "torch":
            raise ConfigError(f"{path}: an exported model cannot run in PyTorch; pass the .safetensors checkpoint")
        if suffix == ".xml" and backend == "onnxruntime":
            raise ConfigError(f"{path}: OpenVINO IR runs on --backend openvino; export ONNX for onnxruntime")
        if backend == "openvino" or suffix == ".xml":
            return OpenVinoBackend(path, meta, precision)
        return OnnxRuntimeBackend(path, meta)

    model, meta = load_checkpoint(path)
    if backend == "auto":
        # OpenVINO pays for its one-off conversion only on a long job, or when a conversion is cached.
        worth_it = converted_ir_path(path).is_file() or (num_images or 0) >= AUTO_OPENVINO_MIN_IMAGES
        use_openvino = torch_device.type == "cpu" and openvino_available() and worth_it and not compile
        backend = "openvino" if use_openvino else "torch"
    if backend == "torch":
        return TorchBackend(model, meta, torch_device, resolve_precision(precision, torch_device), compile)
    if torch_device.type != "cpu":
        raise ConfigError(f"--backend {backend} runs on the CPU; use --backend torch for --device {device}")
    ir = converted_ir_path(path)
    if backend == "openvino":
        if not ir.is_file():
            export_openvino(model, meta, ir, overwrite=True)
        return OpenVinoBackend(ir, meta, precision)
    onnx_path = ir.with_suffix(".onnx")
    if not onnx_path.is_file():
        from pixelwise.inference.export import export_onnx

        os.makedirs(onnx_path.parent, exist_ok=True)
        export_onnx(model, meta, onnx_path, overwrite=True)
    return OnnxRuntimeBackend(onnx_path, meta)
