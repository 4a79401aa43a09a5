"""``pixelwise evaluate``: score a checkpoint, an ensemble of them, or an exported model on a split.

The CLI layer picks the scorer, since training and inference never import each other: checkpoints are
scored in PyTorch by :func:`pixelwise.training.evaluate.evaluate_checkpoint`, an exported ``.onnx`` or
OpenVINO ``.xml`` (an int8 model from ``pixelwise quantize`` too) on its runtime by
:func:`pixelwise.inference.score.evaluate_exported`. Both print and write the same metrics.

>>> from pixelwise.testing import run_main
>>> run_main("evaluate", "--help").returncode
0
>>> default_json(Path("runs/a/best.safetensors"), 1, "val", ""), default_json(Path("m_int8.xml"), 1, "val", "")
(PosixPath('runs/a/eval_val.json'), PosixPath('m_int8_eval_val.json'))
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import (
    BACKEND_HELP,
    CLASSES_HELP,
    FORMAT_HELP,
    BatchSize,
    Device,
    InputSize,
    Precision,
    TtaFlip,
    TtaScales,
    Workers,
    parse_input_size,
    parse_scales,
)
from pixelwise.core.errors import ConfigError
from pixelwise.core.metrics import format_table
from pixelwise.inference.export import exporter_for_file
from pixelwise.inference.score import evaluate_exported
from pixelwise.training.evaluate import evaluate_checkpoint


def default_json(first: Path, models: int, split: str, tta: str) -> Path:
    """Where the metrics go by default: ``eval_SPLIT.json`` beside a checkpoint (``_tta`` and ``_ensemble`` added
    so that neither replaces the plain score), ``STEM_eval_SPLIT.json`` beside an exported model (so that an int8
    model's score does not replace its checkpoint's)."""
    if exporter_for_file(first) is not None:
        return first.with_name(f"{first.stem}_eval_{split}{tta}.json")
    return first.with_name(f"eval_{split}{tta}.json" if models == 1 else f"eval_{split}{tta}_ensemble.json")


def evaluate(
    # long function: one typer option per choice (the help lists them); the body is twenty lines.
    checkpoints: Annotated[list[Path], typer.Argument(
        help="A best.safetensors written by train (several are scored as an ensemble, their logits averaged), "
             "or an exported .onnx / OpenVINO .xml, such as an int8 model from `pixelwise quantize`.")],
    data: Annotated[str, typer.Option(help="Dataset folder.")],
    split: Annotated[str, typer.Option(help="Split to score.")] = "val",
    format: Annotated[str, typer.Option(help=f"Dataset layout: {FORMAT_HELP}.")] = "auto",
    classes: Annotated[str | None, typer.Option(help=f"{CLASSES_HELP} (default: the checkpoint's).")] = None,
    json_path: Annotated[Path | None,
                         typer.Option("--json", help="Metrics JSON (default: beside the (first) model, "
                                      "eval_SPLIT.json, or STEM_eval_SPLIT.json for an exported one; _tta, "
                                      "_ensemble, _HxW and _xSCALE are added for TTA, an ensemble, "
                                      "--input-size and --predict-scale).")] = None,
    confusion: Annotated[Path | None, typer.Option(help="Confusion-matrix PNG (default: beside the JSON).")] = None,
    batch_size: BatchSize = 4,
    workers: Workers = None,
    precision: Precision = "auto",
    device: Device = "auto",
    backend: Annotated[str, typer.Option(help=f"For an exported model: {BACKEND_HELP}")] = "auto",
    tta_flip: TtaFlip = False,
    tta_scales: TtaScales = None,
    input_size: InputSize = None,
    predict_scale: Annotated[float | None, typer.Option(min=0.01, help=(
        "Enlarge the resized images this much before the model (default: the model's own, see train "
        "--predict-scale); 1 scores it as training validated it."))] = None,
) -> None:
    """Score a checkpoint (or an ensemble, or an exported model): per-class IoU/Dice table, calibration (ECE),
    metrics JSON and a confusion-matrix PNG.

    \b
    Examples:
      pixelwise evaluate runs/camvid/best.safetensors --data data/camvid --split val --json val.json
      pixelwise evaluate runs/a/best.safetensors runs/b/best.safetensors --data data/camvid    (an ensemble)
      pixelwise evaluate runs/camvid/best.safetensors --data data/camvid --tta-flip    (as predict --tta-flip)
      pixelwise evaluate runs/camvid/best_int8.xml --data data/camvid    (an int8 model, on OpenVINO)
      pixelwise evaluate runs/camvid/best.safetensors --data data/camvid --predict-scale 1.5    (enlarged 1.5x)
    """
    scales = parse_scales(tta_scales) if tta_scales is not None else (1.0,)
    size = parse_input_size(input_size)
    tta = "_tta" if tta_flip or scales != (1.0,) else ""
    # Another input size than the model's gets its own file too, e.g. eval_val_360x480.json.
    at = "" if size == "model" else "_native" if size is None else f"_{size[0]}x{size[1]}"
    at += "" if predict_scale is None else f"_x{predict_scale:g}"
    json_path = json_path or default_json(checkpoints[0], len(checkpoints), split, tta + at)
    confusion = confusion or json_path.with_name(json_path.stem + "_confusion.png")
    exported = [p for p in checkpoints if exporter_for_file(p) is not None]
    if exported and len(checkpoints) > 1:
        raise ConfigError(f"{exported[0]}: an exported model cannot join an ensemble; evaluate it alone, or pass "
                          "the .safetensors checkpoints")
    if exported:
        metrics = evaluate_exported(exported[0], data, split, format, classes, batch_size, workers, precision,
                                    backend, json_path, confusion, tta_flip, scales, size,
                                    predict_scale)
    else:
        metrics = evaluate_checkpoint(checkpoints, data, split, format, classes, batch_size, workers, device,
                                      precision, json_path, confusion, tta_flip, scales, size,
                                      predict_scale)
    typer.echo(format_table(metrics))
    on = f" on {metrics['backend']}" if "backend" in metrics else ""
    typer.echo(f"{split}: {metrics['images']} images{on}, mIoU {metrics['miou']:.4f}, expected calibration error "
               f"{metrics['ece']:.4f}; wrote {json_path} and {confusion}")
