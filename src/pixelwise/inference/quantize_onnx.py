"""``onnx`` int8: onnxruntime's static quantization of an ONNX model, in the QDQ format.

QDQ (QuantizeLinear/DequantizeLinear pairs around each quantized operator) is the format onnxruntime's
documentation recommends for CPUs: its graph optimiser fuses every pair and operator into one int8 kernel,
and other runtimes read the same file. Activations are unsigned int8 and weights signed int8 (U8S8), weights
per output channel; activation ranges are the min/max seen on the calibration images. U8S8, not onnxruntime's
default S8S8: on the CamVid checkpoint (README "int8 models") S8S8 ran at 0.92x onnxruntime's fp32 speed,
U8S8 at 1.31x, since onnxruntime's x86 int8 kernels (VNNI's multiply-add) take unsigned activations.

>>> OnnxQuantizer.suffix, OnnxQuantizer.backend
('.onnx', 'onnxruntime')
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixelwise.core.files import atomic_path, remove_quietly
from pixelwise.core.optional import import_optional
from pixelwise.inference.quantize_base import Quantizer, ValidationSet, register_quantizer

PURPOSE = "pixelwise quantize --format onnx"


class _Images:
    """onnxruntime's ``CalibrationDataReader``: one ``{"image": array}`` feed per calibration image."""

    def __init__(self, images: Sequence[np.ndarray]) -> None:
        self.items = iter(images)

    def get_next(self) -> dict | None:
        image = next(self.items, None)
        return None if image is None else {"image": image}


@register_quantizer("onnx")
class OnnxQuantizer(Quantizer):
    """onnxruntime static quantization (QDQ, U8S8, weights per channel); writes an int8 ``.onnx`` file."""

    suffix = ".onnx"
    backend = "onnxruntime"
    export_format = "onnx"

    @staticmethod
    def check_installed() -> None:
        for module in ("onnx", "onnxruntime"):
            import_optional(module, extra="onnx", purpose=PURPOSE)

    @staticmethod
    def quantize(fp32: Path, calibration: Sequence[np.ndarray], out: Path, meta_json: str,
                 validation: ValidationSet | None = None, max_drop: float | None = None) -> dict:
        """Write the int8 model of ``fp32`` to ``out`` (onnxruntime has no accuracy-aware mode: no ``max_drop``)."""
        quantization = import_optional("onnxruntime.quantization", extra="onnx", purpose=PURPOSE)
        # Shape inference and graph optimisation first, as onnxruntime's documentation asks: without it the
        # quantizer cannot see through the exporter's reshapes and leaves some convolutions in fp32.
        prepared = out.with_name(f"{out.stem}.prepared.onnx")
        try:
            with _quiet():
                quantization.quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
                quantization.quantize_static(
                    str(prepared), str(out), _Images(calibration), quant_format=quantization.QuantFormat.QDQ,
                    per_channel=True, activation_type=quantization.QuantType.QUInt8,
                    weight_type=quantization.QuantType.QInt8)
        finally:
            remove_quietly(prepared)
        OnnxQuantizer.write_meta(out, meta_json)
        return {"mode": "plain", "float_layers": float_convolutions(out)}

    @staticmethod
    def write_meta(path: Path, meta_json: str) -> None:
        """Store ``meta_json`` in the ONNX file's ``metadata_props`` (where :func:`read_onnx_meta` reads it)."""
        onnx = import_optional("onnx", extra="onnx", purpose=PURPOSE)
        model = onnx.load(str(path))
        kept = [p for p in model.metadata_props if p.key != "pixelwise"]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        model.metadata_props.add(key="pixelwise", value=meta_json)
        with atomic_path(path) as tmp:
            onnx.save(model, str(tmp))


def float_convolutions(path: Path) -> list[str]:
    """The convolutions of an int8 ONNX file whose input or weights are not dequantized int8 (left in fp32)."""
    onnx = import_optional("onnx", extra="onnx", purpose=PURPOSE)
    graph = onnx.load(str(path)).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    kinds = ("Conv", "ConvTranspose", "MatMul")
    return sorted(node.name for node in graph.node
                  if node.op_type in kinds and not {node.input[0], node.input[1]} <= dequantized)


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantizer logs every step at INFO level through the root logger; keep warnings only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)
