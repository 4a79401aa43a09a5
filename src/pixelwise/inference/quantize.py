"""``pixelwise quantize``: post-training int8 quantization of a trained model, with its cost measured.

1. The fp32 model: a checkpoint is exported once (to the cache ``predict`` uses), an exported file is read.
2. Calibration: up to ``samples`` images of a folder, or of a dataset's training split, spread evenly over
   it and preprocessed exactly as the predictor does (the model's input size, its mean/std,
   enlarged by its predict_scale).
3. The quantizer of ``fmt`` (:mod:`pixelwise.inference.quantize_openvino`: NNCF, optionally accuracy-aware;
   :mod:`pixelwise.inference.quantize_onnx`: onnxruntime's QDQ) writes the int8 model.
4. fp32 and int8 are scored on the val split in the same process on the same batches
   (:mod:`pixelwise.inference.quantize_report`); the report goes into the int8 model's metadata, so
   ``read_model_meta(path).extra["int8"]`` holds it wherever the model goes.

Nothing is left half-written: the int8 model is made in a hidden folder beside the destination and moved
into place once measured.

>>> sorted(list_quantizers())
['onnx', 'openvino']
>>> evenly_spaced(list(range(10)), 3)
[0, 3, 6]
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from pixelwise.core.device import cpu_has_fast_bf16
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.core.files import atomic_path, remove_quietly
from pixelwise.data.formats import open_dataset
from pixelwise.data.io import IMAGE_EXTENSIONS, read_image
from pixelwise.data.transforms import eval_transform, normalize
from pixelwise.inference.backends import converted_path, open_backend
from pixelwise.inference.export import EXPORTERS, exporter_for_file, read_model_meta
from pixelwise.inference.export.base import check_destination
from pixelwise.inference.quantize_base import QUANTIZERS, ValidationSet, list_quantizers, quantized_name
from pixelwise.inference.quantize_onnx import OnnxQuantizer
from pixelwise.inference.quantize_openvino import OpenVinoQuantizer
from pixelwise.inference.quantize_report import compare_models, cpu_speed_facts
from pixelwise.inference.score import split_loader
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint
from pixelwise.models.tta import enlarged, with_tta

__all__ = ["OnnxQuantizer", "OpenVinoQuantizer", "calibration_files", "list_quantizers", "quantize_model"]


def evenly_spaced(items: list, count: int) -> list:
    """``count`` items spread over ``items`` (all of them when there are fewer): a calibration set that
    covers a whole sequence (CamVid's training split is 5 videos, in order), not its first scenes."""
    if count >= len(items):
        return items
    return [items[math.floor(k * len(items) / count)] for k in range(count)]


def calibration_files(calib: Path, split: str, samples: int, format: str = "auto") -> list[Path]:
    """Up to ``samples`` image files: those of the folder ``calib`` when it holds images itself, else of the
    ``split`` of the dataset at ``calib``."""
    if samples < 1:
        raise ConfigError(f"--samples {samples}: calibration needs at least 1 image")
    if not calib.is_dir():
        raise DataError(f"{calib}: calibration folder not found; pass --calib with a folder of images or a dataset")
    images = sorted(p for p in calib.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        try:
            images = [s.image for s in open_dataset(calib, format).split(split)]
        except DataError as e:
            raise DataError(f"{calib}: no images to calibrate on ({e}); pass --calib with a folder of images "
                            "or a dataset") from None
    return evenly_spaced(images, samples)


class CalibrationImages(Sequence):
    """The calibration images as the model gets them: ``(1, 3, h, w)`` float32 arrays, normalised; each one
    decoded when asked for (300 photos of 512x1024 would hold 1.8 GB as floats)."""

    def __init__(self, files: list[Path], meta: CheckpointMeta) -> None:
        self.files, self.meta, self.resize = files, meta, eval_transform(meta.input_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        image = self.resize(image=read_image(self.files[index]))["image"]
        batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        # Enlarged as predict feeds the model (predict_scale): the activations' ranges are those of that size.
        return enlarged(normalize(batch, self.meta.mean, self.meta.std), self.meta.predict_scale).numpy()


def fp32_model(source: Path, export_format: str) -> tuple[Path, CheckpointMeta]:
    """The fp32 file to quantize and its metadata: ``source`` itself when exported (an ``.onnx`` file serves
    both formats: OpenVINO reads ONNX), else the conversion of the checkpoint cached as ``predict`` caches it."""
    exporter = EXPORTERS.get(export_format)
    if exporter_for_file(source) is not None:
        if source.suffix.lower() not in (exporter.suffix, ".onnx"):
            raise ConfigError(f"{source}: an {exporter_for_file(source).title} file cannot be quantized for "
                              f"{exporter.title}; pass the .safetensors checkpoint or an .onnx file")
        meta = read_model_meta(source)
        if "int8" in meta.extra:
            raise ConfigError(f"{source}: already an int8 model; quantize the fp32 model or the checkpoint")
        return source, meta
    model, meta = load_checkpoint(source)
    converted = converted_path(source, exporter.suffix)
    if not converted.is_file():
        exporter.export(model, meta, converted, overwrite=True)
    return converted, meta


def validation_set(val: Path, split: str, format: str, meta: CheckpointMeta) -> ValidationSet:
    """The val split of the dataset at ``val``, batch by batch (one image each: NNCF scores images one by one)."""
    index = open_dataset(val, format, meta.classes)
    if index.classes.num_classes != meta.classes.num_classes:
        raise DataError(f"{val}: dataset has {index.classes.num_classes} classes but the model predicts "
                        f"{meta.classes.num_classes}; pass --val with the model's dataset")
    loader = split_loader(index, index.split(split), meta.input_size, batch_size=1, workers=0)
    return ValidationSet(loader, index.classes, meta.mean, meta.std, meta.predict_scale)


def quantize_model(source: str | Path, calib: str | Path, out: str | Path | None = None, samples: int = 300,
                   max_drop: float | None = None, val: str | Path | None = None, split: str = "val",
                   fmt: str = "openvino", calib_split: str = "train", data_format: str = "auto",
                   precision: str = "auto", overwrite: bool = False,
                   log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """Quantize ``source`` (a checkpoint, an fp32 ``.xml`` or ``.onnx``) to int8; returns the written file and
    its report (also in its metadata as ``extra["int8"]``). ``val`` defaults to ``calib`` (a dataset then)."""
    # long function: the steps of the module docstring in order, each a call; split, they would pass eight values
    quantizer = QUANTIZERS.get(fmt)
    quantizer.check_installed()
    source, calib = Path(source), Path(calib)
    out = Path(out) if out is not None else quantized_name(source, quantizer.suffix)
    if out.suffix != quantizer.suffix:
        raise ConfigError(f"{out}: --format {fmt} writes a {quantizer.suffix} file; name --out so")
    check_destination(out, overwrite)
    if max_drop is not None and not quantizer.accuracy_aware:
        raise ConfigError(f"--max-drop is an accuracy-aware mode, which --format {fmt} has not; use --format "
                          f"{' or '.join(n for n in QUANTIZERS if QUANTIZERS.get(n).accuracy_aware)}")
    if max_drop is not None and not max_drop > 0:
        raise ConfigError(f"--max-drop {max_drop}: give the mIoU points int8 may lose, e.g. 0.5")
    if not source.is_file():
        raise DataError(f"{source}: model file not found")
    files = calibration_files(calib, calib_split, samples, data_format)
    if val is None and files[0].parent == calib:
        raise ConfigError(f"{calib}: a folder of images calibrates, but scoring fp32 against int8 needs labels; "
                          "pass --val with a labelled dataset")
    fp32, meta = fp32_model(source, quantizer.export_format)
    validation = validation_set(Path(val) if val is not None else calib, split, data_format, meta)
    log(f"calibrating on {len(files)} images of {calib}; validating on {split} of {val or calib}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".quantize-", dir=out.parent))
    try:
        staged = staging / f"model{quantizer.suffix}"
        done = quantizer.quantize(fp32, CalibrationImages(files, meta), staged, meta.to_json(), validation, max_drop)
        runs = {"fp32": open_backend(fp32, quantizer.backend, "cpu", "fp32"),
                "int8": open_backend(staged, quantizer.backend, "cpu", precision)}
        if quantizer.backend == "openvino" and cpu_has_fast_bf16():  # what `predict` runs fp32 models in here
            runs["bf16"] = open_backend(fp32, quantizer.backend, "cpu", "bf16")
        fed_as_predicted = {name: with_tta(run, False, [meta.predict_scale]) for name, run in runs.items()}
        report = compare_models(fed_as_predicted, validation.batches, validation.classes, meta.mean, meta.std)
        report["predict_scale"] = meta.predict_scale
        report.update(done, source=str(source), format=fmt, split=split, val=str(val or calib),
                      calibration={"data": str(calib), "images": len(files)},
                      int8_precision=runs["int8"].precision, **cpu_speed_facts())
        meta.extra["int8"] = report
        quantizer.write_meta(staged, meta.to_json())
        del runs, fed_as_predicted  # the compiled models map the staged files
        _move_into_place(staging, staged, out)
    finally:
        remove_quietly(staging)
    return out, report


def _move_into_place(staging: Path, staged: Path, out: Path) -> None:
    """Every file written beside ``staged`` to ``out``'s name, ``staged`` itself (the one readers open) last."""
    companions = [p for p in staging.iterdir() if p.stem == staged.stem and p != staged]
    for written in [*companions, staged]:
        with atomic_path(out.with_suffix(written.suffix)) as tmp:
            os.replace(written, tmp)
