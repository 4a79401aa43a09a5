"""``onnxruntime``: exported ONNX files on the CPU.

>>> OnnxRuntimeBackend.suffixes(), OnnxRuntimeBackend.cpu_only
(('.onnx',), True)
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelwise.core.optional import import_optional
from pixelwise.inference.backends.base import Backend, quantized_precision, register_backend
from pixelwise.models.checkpoint import CheckpointMeta


@register_backend("onnxruntime")
class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU, fp32; a checkpoint is exported to ONNX first (once, cached)."""

    title = "onnxruntime"
    export_format = "onnx"
    cpu_only = True
    concurrent_calls = True  # InferenceSession.run is thread-safe

    def __init__(self, path: Path, meta: CheckpointMeta) -> None:
        ort = import_optional("onnxruntime", extra="onnx", purpose="--backend onnxruntime",
                              hint=" or use --backend torch")
        self.meta = meta
        self.precision = quantized_precision(meta, "fp32")
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    @classmethod
    def from_file(cls, path: Path, meta: CheckpointMeta, precision: str = "auto") -> OnnxRuntimeBackend:
        """``precision`` does not apply: the graph runs in fp32 as exported."""
        return cls(path, meta)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"image": images.float().cpu().numpy()})
        return torch.from_numpy(logits)
