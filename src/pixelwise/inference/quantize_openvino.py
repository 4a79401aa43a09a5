"""``openvino`` int8: NNCF's post-training quantization of an OpenVINO model.

NNCF (OpenVINO's own compression library) inserts int8 quantize/dequantize pairs on every convolution's
input and weights, with ranges read from calibration images, folds the weights to int8, and corrects each
layer's bias for the shift int8 rounding causes in its mean output. In the
accuracy-aware mode (``max_drop``) it then scores the int8 model with the validation function (here the
mIoU, in points, on the val split), and while the drop exceeds ``max_drop`` it reverts the layers whose
quantization hurts most to floating point, one group at a time.

>>> from pixelwise.core.optional import is_installed
>>> OpenVinoQuantizer.suffix, OpenVinoQuantizer.backend
('.xml', 'openvino')
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelwise.core.metrics import ConfusionMatrix
from pixelwise.core.optional import import_optional
from pixelwise.data.classes import ClassSpec
from pixelwise.data.transforms import normalize
from pixelwise.inference.openvino_core import openvino_core
from pixelwise.inference.quantize_base import Quantizer, ValidationSet, register_quantizer
from pixelwise.inference.score import batch_predictions
from pixelwise.models.tta import enlarged, with_tta


def import_nncf() -> Any:
    """``nncf``, quietly (its import makes torch warn about CUDA on a CPU-only machine); or one error line."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    nncf = import_optional("nncf", extra="int8", purpose="pixelwise quantize --format openvino")
    nncf.set_log_level(logging.WARNING)
    return nncf


def miou_points(compiled: Any, batches: Iterable[dict], classes: ClassSpec, mean: Sequence[float],
                std: Sequence[float], scale: float = 1.0) -> tuple[float, list[float]]:
    """NNCF's validation function: the mIoU in points (0-100) of a compiled model over ``batches`` (inputs
    enlarged by ``scale``, the model's predict_scale), and each batch's own mIoU (NNCF ranks the layers to
    revert by how much each image's score moves)."""

    def raw_logits(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(compiled(images.numpy())[0], dtype=np.float32))

    logits = with_tta(raw_logits, False, [scale])

    total, per_item = ConfusionMatrix(classes.num_classes, classes.names), []
    for batch in batches:
        predictions = batch_predictions(logits, batch, mean, std)
        one = ConfusionMatrix(classes.num_classes, classes.names)
        one.update(predictions, batch["mask"])
        total.mat += one.mat
        per_item.append(100 * one.compute()["miou"])
    return 100 * total.compute()["miou"], per_item


@register_quantizer("openvino")
class OpenVinoQuantizer(Quantizer):
    """NNCF on an OpenVINO IR (or ONNX file); writes an int8 IR (``.xml`` + ``.bin``)."""

    suffix = ".xml"
    backend = "openvino"
    export_format = "openvino"
    accuracy_aware = True

    @staticmethod
    def check_installed() -> None:
        import_optional("openvino", extra="int8", purpose="pixelwise quantize")
        import_nncf()

    @staticmethod
    def quantize(fp32: Path, calibration: Sequence[np.ndarray], out: Path, meta_json: str,
                 validation: ValidationSet | None = None, max_drop: float | None = None) -> dict:
        """Write the int8 model of ``fp32`` to ``out``; returns what was done (mode, layers kept in float)."""
        nncf, ov = import_nncf(), import_optional("openvino", extra="int8", purpose="pixelwise quantize")
        model = openvino_core().read_model(str(fp32))
        calib = nncf.Dataset(calibration)
        # Full bias correction, not NNCF's fast default: on the CamVid recipe's checkpoint it raised the int8
        # labels' agreement with fp32 from 99.00% to 99.48% (README "int8 models"), for a minute more here.
        common = {"subset_size": len(calibration), "target_device": nncf.TargetDevice.CPU,
                  "fast_bias_correction": False}
        if max_drop is None:
            quantized = nncf.quantize(model, calib, **common)
            done: dict = {"mode": "plain"}
        else:
            assert validation is not None, "the accuracy-aware mode needs a validation set"

            def validate(compiled: Any, items: Iterable[dict]) -> tuple[float, list[float]]:
                return miou_points(compiled, items, validation.classes, validation.mean, validation.std,
                                   validation.scale)

            def model_input(batch: dict) -> np.ndarray:
                return enlarged(normalize(batch["image"], validation.mean, validation.std), validation.scale).numpy()

            val = nncf.Dataset(validation.batches, model_input)
            quantized = nncf.quantize_with_accuracy_control(model, calib, val, validate, max_drop=max_drop,
                                                            drop_type=nncf.DropType.ABSOLUTE, **common)
            done = {"mode": "accuracy-aware", "max_drop_points": max_drop}
        done["float_layers"] = float_layers(quantized)
        quantized.set_rt_info(meta_json, ["pixelwise"])
        ov.save_model(quantized, str(out), compress_to_fp16=False)
        return done

    @staticmethod
    def write_meta(path: Path, meta_json: str) -> None:
        """Rewrite the IR at ``path`` with ``meta_json`` as its pixelwise metadata."""
        ov = import_optional("openvino", extra="int8", purpose="pixelwise quantize")
        model = openvino_core().read_model(str(path))
        model.set_rt_info(meta_json, ["pixelwise"])
        staged = path.with_name(f"{path.stem}.meta.xml")
        ov.save_model(model, str(staged), compress_to_fp16=False)
        staged.replace(path)
        staged.with_suffix(".bin").replace(path.with_suffix(".bin"))


def float_layers(quantized: Any) -> list[str]:
    """The convolutions and matrix products of the int8 model whose weights are not int8 (the accuracy-aware
    mode's reverted layers, or ones NNCF skips), by name.

    Judged by the weights, not the input: NNCF quantizes a concatenation's or padding's inputs, not its output,
    so a U-Net decoder convolution reads int8 data through a Concat that has no quantize node of its own.
    """
    kinds = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
    return sorted(op.get_friendly_name() for op in quantized.get_ops() if op.get_type_name() in kinds
                  and not _int8_constant_above(op.input(1).get_source_output().get_node()))


def _int8_constant_above(node: Any, depth: int = 6) -> bool:
    """Whether an 8-bit (or narrower) integer constant feeds ``node`` within ``depth`` steps: the int8 weights
    NNCF stores, followed by Convert, Subtract (zero point) and Multiply (scale) nodes."""
    if node.get_type_name() == "Constant":
        return node.get_output_element_type(0).get_type_name() in ("i8", "u8", "i4", "u4")
    return depth > 0 and any(_int8_constant_above(i.get_source_output().get_node(), depth - 1) for i in node.inputs())
