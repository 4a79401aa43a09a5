"""``pixelwise predict`` and ``pixelwise export``: a trained model put to use.

Both take several checkpoints where they take one: an ensemble, whose logits are averaged. ``predict``
tells them from the images by their suffix: the model files come first, the images start at the first
argument that is not one (an image is never a ``.safetensors``, ``.onnx`` or ``.xml`` file).

>>> parse_scales("0.75,1,1.25")
(0.75, 1.0, 1.25)
>>> models, images = split_models(Path("a.safetensors"), ["b.safetensors", "photos/", "c.png"])
>>> [str(m) for m in models], images
(['a.safetensors', 'b.safetensors'], ['photos/', 'c.png'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from pixelwise.cli.common import (
    BACKEND_HELP,
    BatchSize,
    Device,
    Precision,
    TtaFlip,
    TtaScales,
    one_of,
    parse_scales,
    parse_size_option,
)
from pixelwise.core.errors import ConfigError
from pixelwise.data.io import read_mask
from pixelwise.data.preannotations import PreAnnotationWriter, create_preannotation_writer, list_preannotation_formats
from pixelwise.inference.compare import compare_with_runtime
from pixelwise.inference.export import EXPORTERS, OPSET, export_checkpoint, list_export_formats
from pixelwise.inference.export.base import read_model_meta
from pixelwise.inference.export.onnx_file import in_channels
from pixelwise.inference.outputs import DEFAULT_OUTPUTS, OUTPUTS, parse_outputs
from pixelwise.inference.predictor import expand_inputs, predict_to_folder
from pixelwise.models.checkpoint import read_meta
from pixelwise.models.ensemble import load_checkpoints


def predict(
    # long function: one typer option per choice (the help lists them); the body is a dozen lines.
    checkpoint: Annotated[Path, typer.Argument(
        help="A best.safetensors written by train, or an exported .onnx / OpenVINO .xml. More .safetensors "
             "files right after it make an ensemble: their logits are averaged.")],
    inputs: Annotated[list[str], typer.Argument(
        help="Image files, folders or glob patterns (after the checkpoints).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    batch_size: BatchSize = 4,
    workers: Annotated[int | None, typer.Option(
        help="Decoding processes (default: 0 on a 2-core CPU, else 2).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    precision: Precision = "auto",
    device: Device = "auto",
    tile: Annotated[str | None, typer.Option(
        help="Tiled prediction HxW, e.g. 512x512: large images at native resolution, not resized to the "
             "training size; --batch-size then counts tiles. Default: the checkpoint's own (a model trained on "
             "crops at native resolution); 'none' never tiles.")] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap, a fraction in [0, 1).")] = 0.25,
    tta_flip: TtaFlip = False,
    tta_scales: TtaScales = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (torch backend).")] = False,
    outputs: Annotated[str, typer.Option(help=(
        f"What to write per image, comma-separated: {one_of(OUTPUTS.names())}: <name>_labels.png (class ids), "
        "_color.png (class colours), _overlay.png (colours on the photo), _probs.npz (class probabilities, "
        "float16) and _uncertainty.png (0 certain .. 255 most uncertain)."))] = ",".join(DEFAULT_OUTPUTS),
    save_probs: Annotated[bool, typer.Option("--save-probs", help="Also write probs (as in --outputs).")] = False,
    save_uncertainty: Annotated[bool, typer.Option(
        "--save-uncertainty", help="Also write uncertainty (as in --outputs).")] = False,
    uncertainty: Annotated[str, typer.Option(
        help="What the uncertainty output measures: entropy (over log(classes)) or margin (1 - the top class's "
             "probability).")] = "entropy",
    to: Annotated[str | None, typer.Option("--to", help=(
        f"Also write the predictions as a labelling tool's pre-annotations, to correct there: "
        f"{one_of(list_preannotation_formats())}. With the uncertainty output, tools that rank by a score get each "
        "image's mean certainty."))] = None,
) -> None:
    """Label images; writes <name>_labels.png (class ids) and <name>_overlay.png, or what --outputs names.

    \b
    Examples:
      pixelwise predict runs/camvid/best.safetensors data/camvid/val --out preds
      pixelwise predict runs/camvid/best.safetensors data/camvid/val --out preds --outputs labels,color,overlay
      pixelwise predict runs/sat/best.safetensors big.tif --out preds --tile 512x512 --overlap 0.25 --tta-flip
      pixelwise predict runs/a/best.safetensors runs/b/best.safetensors photos/ --out preds    (an ensemble)
      pixelwise predict runs/camvid/best.safetensors photo.jpg --out preds --outputs labels,probs,uncertainty
      pixelwise predict runs/cells/best.safetensors images/ --out preds --to label-studio
    """
    models, inputs = split_models(checkpoint, inputs)
    kinds = parse_outputs([*parse_outputs(outputs), *["probs"] * save_probs, *["uncertainty"] * save_uncertainty])
    if to is not None and "labels" not in kinds:  # the pre-annotations are made from the labels files
        raise ConfigError(f"--to {to} needs the labels output; add labels to --outputs ({','.join(kinds)})")
    writer = _preannotation_writer(to, models, out, overwrite) if to is not None else None
    tile_size = "train" if tile is None else None if tile.lower() == "none" else parse_size_option(tile, "--tile")
    if not 0 <= overlap < 1:
        raise click.BadParameter(f"{overlap} is not in [0, 1); e.g. 0.25", param_hint="--overlap")
    scales = parse_scales(tta_scales) if tta_scales is not None else (1.0,)
    written = predict_to_folder(models, inputs, out, batch_size, workers, overwrite, device, precision,
                                tile=tile_size, overlap=overlap, tta_flip=tta_flip, tta_scales=scales,
                                backend=backend, compile=compile, log=typer.echo, outputs=kinds,
                                save_uncertainty=uncertainty if "uncertainty" in kinds else None)
    typer.echo(f"wrote {sum(map(len, written))} files for {len(written)} images to {out}")
    if writer is not None:
        path = write_preannotations(writer, expand_inputs(inputs), written, out)
        typer.echo(f"wrote {path} ({to} pre-annotations of {len(written)} images, model version "
                   f"{writer.model_version})")


def _preannotation_writer(to: str, models: list[Path], out: Path, overwrite: bool) -> PreAnnotationWriter:
    """The ``--to`` writer, made before predicting so that a wrong name or a file in the way costs nothing.

    Its classes are the model's; its model version names the checkpoint(s), e.g. ``camvid/best.safetensors``.
    """
    first = models[0]
    meta = read_meta(first) if first.suffix.lower() == ".safetensors" else read_model_meta(first)
    version = " + ".join(f"{m.parent.name}/{m.name}" if m.parent.name else m.name for m in models)
    writer = create_preannotation_writer(to, meta.classes, model_version=version)
    if (out / writer.file_name).exists() and not overwrite:
        raise ConfigError(f"{out / writer.file_name}: already exists; choose another --out or pass --overwrite")
    return writer


def write_preannotations(writer: PreAnnotationWriter, images: list[Path], written: list[dict[str, Path]],
                         out: Path) -> Path:
    """Hand the writer each image's ``_labels.png`` as predict wrote it (and, with the uncertainty output, a
    score: 1 - the mean of ``_uncertainty.png``), then write its file into ``out``."""
    for image, files in zip(images, written, strict=True):
        score = 1.0 - float(read_mask(files["uncertainty"]).mean()) / 255.0 if "uncertainty" in files else None
        writer.add(image, read_mask(files["labels"]), score=score)
    return writer.write(out)


def split_models(checkpoint: Path, inputs: list[str]) -> tuple[list[Path], list[str]]:
    """The model files (``checkpoint`` and those right after it) and the images after them.

    A model file is told by its suffix: ``.safetensors``, or that of an export format (so that two exported
    files given as an ensemble get the error saying they cannot be one, not "not an image").
    """
    suffixes = {".safetensors", *(EXPORTERS.get(name).suffix for name in EXPORTERS)}
    count = next((k for k, item in enumerate(inputs) if Path(item).suffix.lower() not in suffixes), len(inputs))
    models = [checkpoint, *(Path(item) for item in inputs[:count])]
    if count == len(inputs):
        raise click.BadParameter(f"{' '.join(map(str, models))} are all model files; name the images, folders "
                                 "or glob patterns after them", param_hint="'INPUTS...'")
    return models, inputs[count:]


def export(
    checkpoints: Annotated[list[Path], typer.Argument(
        help="A best.safetensors written by train; several make one graph that averages their logits (an "
             "ensemble).")],
    format: Annotated[str, typer.Option("--format", help=f"{one_of(list_export_formats())}.")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        help="Output file; default: the checkpoint's name with .onnx (OpenVINO: .xml + .bin), for an ensemble "
             "the first checkpoint's with _ensemble added.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = OPSET,
    check: Annotated[bool, typer.Option(help="Compare the runtime with PyTorch on random input.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Export a checkpoint to ONNX or OpenVINO (dynamic batch, height and width; classes and normalisation inside).

    \b
    Examples:
      pixelwise export runs/camvid/best.safetensors --format onnx
      pixelwise export runs/camvid/best.safetensors --format openvino
      pixelwise export runs/a/best.safetensors runs/b/best.safetensors --out ensemble.onnx    (an ensemble)
    """
    path = export_checkpoint(checkpoints, out, format, opset, overwrite)
    members = f", the mean of {len(checkpoints)} checkpoints" if len(checkpoints) > 1 else ""
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB{members})")
    if check:
        model, _ = load_checkpoints(checkpoints)
        shape = (1, in_channels(model), 67, 93)  # odd on purpose: exercises the padding
        diff = compare_with_runtime(model, path, shape)
        runtime = "OpenVINO" if path.suffix == ".xml" else "onnxruntime"
        typer.echo(f"{runtime} vs PyTorch fp32 at {'x'.join(map(str, shape))}: max abs difference {diff:.2g}")
