"""``pixelwise quantize``: an int8 model of a trained checkpoint, and what int8 costs in accuracy, measured.

The library behind it is :mod:`pixelwise.inference.quantize`. The written model runs like any exported
one (``predict``, ``evaluate``, ``serve``, ``Predictor``), and its metadata keeps the report printed here.

>>> from pixelwise.testing import run_main
>>> run_main("quantize", "--help").returncode
0
>>> print(summary({"miou": {"fp32": 0.6, "int8": 0.597}, "agreement": {"int8": 0.995},
...                "speedup": {"int8": 2.0}, "per_class_iou": {"fp32": {"a": 0.5}, "int8": {"a": 0.49}}}))
int8 mIoU 59.70% vs fp32 60.00% (-0.30 points; worst class a -1.00); labels agree on 99.50%; 2.00x the speed of fp32
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import FORMAT_HELP, Precision, one_of
from pixelwise.inference.quantize import list_quantizers, quantize_model
from pixelwise.inference.quantize_report import format_report, worst_class_drop


def quantize(
    model: Annotated[Path, typer.Argument(
        help="A best.safetensors written by train, or its fp32 OpenVINO .xml or .onnx export.")],
    calib: Annotated[Path, typer.Option(
        help="Calibration images: a folder of images, or a dataset (its --calib-split is used).")],
    samples: Annotated[int, typer.Option(min=1, help="Calibrate on at most this many images, spread evenly.")] = 300,
    out: Annotated[Path | None, typer.Option(
        help="The int8 model (default: beside MODEL, _int8 added, e.g. best_int8.xml).")] = None,
    max_drop: Annotated[float | None, typer.Option(
        help="Accuracy-aware mode (openvino): NNCF keeps the layers int8 hurts most in floating point until "
             "val mIoU drops at most this many points, e.g. 0.5.")] = None,
    val: Annotated[Path | None, typer.Option(
        help="Dataset whose --split scores fp32 against int8 (default: --calib).")] = None,
    split: Annotated[str, typer.Option(help="Split of --val to score on.")] = "val",
    calib_split: Annotated[str, typer.Option(help="Split of a --calib dataset to calibrate on.")] = "train",
    format: Annotated[str, typer.Option(
        help=f"{one_of(list_quantizers())}: NNCF's OpenVINO IR, or onnxruntime's QDQ ONNX.")] = "openvino",
    data_format: Annotated[str, typer.Option(help=f"Dataset layout: {FORMAT_HELP}.")] = "auto",
    precision: Precision = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Quantize a trained model to int8 (post-training, calibrated on images) and report what it costs: fp32
    vs int8 val mIoU and per-class IoU, label agreement, speed-up (also stored in the model's metadata).

    \b
    Examples:
      pixelwise quantize runs/camvid/best.safetensors --calib data/camvid
      pixelwise quantize runs/camvid/best.safetensors --calib data/camvid --max-drop 0.5
      pixelwise quantize runs/camvid/best.safetensors --calib photos/ --val data/camvid --format onnx
      pixelwise predict runs/camvid/best_int8.xml photos/ --out labels
    """
    written, report = quantize_model(model, calib, out, samples, max_drop, val, split, format, calib_split,
                                     data_format, precision, overwrite, log=typer.echo)
    typer.echo(format_report(report))
    if report["float_layers"]:
        typer.echo(f"left in floating point: {', '.join(report['float_layers'])}")
    typer.echo(f"{report['split']} ({report['images']} images): {summary(report)}")
    drop = 100 * (report["miou"]["fp32"] - report["miou"]["int8"])
    if max_drop is not None and drop > max_drop:
        typer.echo(f"warning: the mIoU drop, {drop:.2f} points, is more than --max-drop {max_drop}: NNCF found no "
                   "mix of layers within it; compare the table above before using the int8 model", err=True)
    typer.echo(f"wrote {written} (the report is in its metadata); CPU {report['cpu']}, int8/bf16 instructions: "
               f"{', '.join(report['instructions']) or 'none'}")


def summary(report: dict) -> str:
    """One line: int8 vs fp32 mIoU, the worst class's drop, the label agreement and the speed-up."""
    miou, agreement = report["miou"], report["agreement"]["int8"]
    worst, drop = worst_class_drop(report)
    text = (f"int8 mIoU {100 * miou['int8']:.2f}% vs fp32 {100 * miou['fp32']:.2f}% "
            f"({100 * (miou['int8'] - miou['fp32']):+.2f} points; worst class {worst} {-100 * drop:+.2f}); "
            f"labels agree on {100 * agreement:.2f}%; {report['speedup']['int8']:.2f}x the speed of fp32")
    if "bf16" in report["speedup"]:
        text += f", {report['speedup']['int8'] / report['speedup']['bf16']:.2f}x that of bf16"
    return text
