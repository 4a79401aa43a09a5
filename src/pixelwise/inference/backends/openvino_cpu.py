"""``openvino``: OpenVINO IR (and ONNX) files on the CPU.

>>> OpenVinoBackend.suffixes(), OpenVinoBackend.cpu_only
(('.xml', '.onnx'), True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixelwise.core.device import cpu_has_fast_bf16
from pixelwise.core.errors import ConfigError
from pixelwise.core.optional import import_optional
from pixelwise.inference.backends.base import Backend, register_backend
from pixelwise.inference.openvino_core import openvino_core
from pixelwise.models.checkpoint import CheckpointMeta


@register_backend("openvino")
class OpenVinoBackend(Backend):
    """OpenVINO on the CPU; bf16 inference where the CPU has native bf16 and precision allows it."""

    title = "OpenVINO"
    export_format = "openvino"
    also_opens = (".onnx",)  # OpenVINO compiles ONNX files directly
    cpu_only = True

    def __init__(self, path: Path, meta: CheckpointMeta, precision: str = "auto") -> None:
        import_optional("openvino", extra="openvino", purpose="--backend openvino", hint=" or use --backend torch")
        self.meta = meta
        if precision == "fp16":
            raise ConfigError("--precision fp16 needs a CUDA GPU; OpenVINO on a CPU runs bf16 or fp32")
        bf16 = precision == "bf16" or (precision == "auto" and cpu_has_fast_bf16())
        config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY"}
        self.precision = "bf16" if bf16 else "fp32"
        self.compiled = openvino_core().compile_model(str(path), "CPU", config)

    @classmethod
    def from_file(cls, path: Path, meta: CheckpointMeta, precision: str = "auto") -> OpenVinoBackend:
        return cls(path, meta, precision)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # Copies both ways: by default OpenVINO keeps pointing at the input array inside its infer request
        # after the call, and that array is freed once we return (this crashed the process later on).
        logits = self.compiled(images.float().cpu().numpy(), share_inputs=False, share_outputs=False)[0]
        return torch.from_numpy(np.array(logits, dtype=np.float32, copy=True))
