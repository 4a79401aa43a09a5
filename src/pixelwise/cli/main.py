"""The ``pixelwise`` command: a thin layer over the library (typer).

Every user-fixable problem ends as one ``error: ...`` line on stderr and a non-zero exit
(2 for bad input or options, 130 when interrupted), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer
import yaml
from typer.exceptions import TyperException

from pixelwise.core.errors import ConfigError, PixelwiseError, one_line
from pixelwise.core.plugins import load_plugins

app = typer.Typer(
    name="pixelwise",
    help="Semantic segmentation from one command: train, evaluate, predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

datasets_app = typer.Typer(help="Inspect, convert and download datasets.", no_args_is_help=True,
                           rich_markup_mode=None)
app.add_typer(datasets_app, name="datasets")

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
# Recent typer vendors its own copy of click; older releases raise click's own exceptions.
CLICK_EXIT = (typer.Exit, click.exceptions.Exit)
CLICK_ABORT = (typer.Abort, click.exceptions.Abort)
CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, TyperException)


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/demo-<time>).")] = None,
    time_budget: Annotated[str, typer.Option(help="Training time, e.g. 2m.")] = "2m",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Generate built-in street scenes, train a U-Net on them, evaluate and predict.

    \b
    Example:
      pixelwise demo --out runs/demo
    """
    from pixelwise.demo import run_demo

    result = run_demo(out, time_budget, progress)
    if result.train.stop_reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    typer.echo(f"run: {result.run_dir}  (best.safetensors, metrics.json, curves.png, predictions.png, predictions/)")
    typer.echo(f"val mIoU: {result.miou:.4f}")


@app.command()
def train(
    config: Annotated[Path | None, typer.Option("--config", help="Recipe YAML; flags override it.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder.")] = None,
    format: Annotated[str | None, typer.Option(help="Dataset layout: auto, folders, camvid.")] = None,
    classes: Annotated[str | None, typer.Option(help="Class preset or classes.yaml path.")] = None,
    model: Annotated[str | None, typer.Option(help="Architecture (see `pixelwise models`).")] = None,
    encoder: Annotated[str | None, typer.Option(help="timm encoder, e.g. resnet34.")] = None,
    encoder_weights: Annotated[str | None, typer.Option(help="none, imagenet or a weights file.")] = None,
    encoder_lr_mult: Annotated[float | None, typer.Option(help="Encoder learning rate = lr x this.")] = None,
    freeze_encoder_epochs: Annotated[int | None, typer.Option(
        help="Train only the decoder for the first N epochs.")] = None,
    upsample: Annotated[str | None, typer.Option(help="U-Net upsampling: transpose, bilinear, pixelshuffle.")] = None,
    compile: Annotated[bool | None, typer.Option("--compile", help="torch.compile the training forward.")] = None,
    model_option: Annotated[list[str] | None, typer.Option(
        help="Model option KEY=VALUE (YAML value), repeatable, e.g. base_filters=32.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.")] = None,
    time_budget: Annotated[str | None, typer.Option(help="Stop after this long, e.g. 30m.")] = None,
    img_size: Annotated[str | None, typer.Option(help="Training size HxW, e.g. 352x480.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    loss: Annotated[str | None, typer.Option(help="ce, dice or ce+dice.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or sgd.")] = None,
    schedule: Annotated[str | None, typer.Option(help="poly, cosine, onecycle or constant.")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Max gradient norm.")] = None,
    class_weights: Annotated[str | None, typer.Option(
        help="CE class weights: auto (median frequency), inverse, or a comma list.")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, bf16, fp16 or fp32.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Data-loading processes (default: 0 on a 2-core CPU, else 2).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early stopping after N epochs without a better mIoU.")] = None,
    out: Annotated[str | None, typer.Option(help="Run folder (default: runs/<time>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly.")] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")] = None,
) -> None:
    """Train a model; writes RUN_DIR/best.safetensors, metrics.csv and plots.

    \b
    Examples:
      pixelwise train --data data/camvid --epochs 40 --img-size 352x480 --out runs/camvid
      pixelwise train --config configs/camvid.yaml --time-budget 30m
      pixelwise train --out runs/camvid --resume
    """
    from pixelwise.core.metrics import format_table
    from pixelwise.training.config import load_config
    from pixelwise.training.trainer import train as run_training

    flags = dict(data=data, format=format, classes=classes, model=model, encoder=encoder,
                 encoder_weights=encoder_weights, encoder_lr_mult=encoder_lr_mult,
                 freeze_encoder_epochs=freeze_encoder_epochs, compile=compile, epochs=epochs,
                 time_budget=time_budget, img_size=img_size,
                 batch_size=batch_size, lr=lr, loss=loss, optimizer=optimizer, schedule=schedule,
                 grad_clip=grad_clip, precision=precision, device=device, workers=workers,
                 seed=seed, patience=patience, out=out, progress=progress)
    if resume and config is None and out is not None and (Path(out) / "config.yaml").is_file():
        config = Path(out) / "config.yaml"  # a resumed run keeps its recipe; flags may extend it
    if class_weights is not None:
        flags["class_weights"] = parse_weights(class_weights)
    options = parse_model_options(model_option or [])
    if upsample is not None:
        options["upsample"] = upsample
    recipe = load_config(config, **flags)
    if options:  # merged into the recipe's model_kwargs rather than replacing them
        recipe = load_config(config, **flags, model_kwargs={**recipe.model_kwargs, **options})
    result = run_training(recipe, resume=resume)
    if result.is_main:  # under torchrun / accelerate launch only the first process reports
        if result.best_metrics:
            typer.echo(format_table(result.best_metrics))
        typer.echo(f"run: {result.run_dir} ({result.stop_reason}, {result.epochs_done} epochs)")
        if result.best_metrics:
            typer.echo(f"best val mIoU: {result.best_metrics['miou']:.4f}  ->  {result.best_checkpoint}")
    if result.stop_reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A best.safetensors written by train.")],
    data: Annotated[str, typer.Option(help="Dataset folder.")],
    split: Annotated[str, typer.Option(help="Split to score.")] = "val",
    format: Annotated[str, typer.Option(help="Dataset layout.")] = "auto",
    classes: Annotated[str | None, typer.Option(help="Class preset or yaml (default: the checkpoint's).")] = None,
    json_path: Annotated[Path | None,
                         typer.Option("--json", help="Metrics JSON (default: beside the checkpoint).")] = None,
    confusion: Annotated[Path | None, typer.Option(help="Confusion-matrix PNG (default: beside the JSON).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 4,
    workers: Annotated[int | None, typer.Option(
        help="Data-loading processes (default: 0 on a 2-core CPU, else 2).")] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Score a checkpoint: per-class IoU/Dice table, metrics JSON and a confusion-matrix PNG.

    \b
    Example:
      pixelwise evaluate runs/camvid/best.safetensors --data data/camvid --split val --json val.json
    """
    from pixelwise.core.metrics import format_table
    from pixelwise.training.evaluate import evaluate_checkpoint

    json_path = json_path or checkpoint.with_name(f"eval_{split}.json")
    confusion = confusion or json_path.with_name(json_path.stem + "_confusion.png")
    metrics = evaluate_checkpoint(checkpoint, data, split, format, classes, batch_size, workers, device, precision,
                                  json_path, confusion)
    typer.echo(format_table(metrics))
    typer.echo(f"{split}: {metrics['images']} images, mIoU {metrics['miou']:.4f}; wrote {json_path} and {confusion}")


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(
        help="A best.safetensors written by train, or an exported .onnx / OpenVINO .xml.")],
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 4,
    workers: Annotated[int | None, typer.Option(
        help="Decoding processes (default: 0 on a 2-core CPU, else 2).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    tile: Annotated[str | None, typer.Option(
        help="Tiled prediction HxW, e.g. 512x512: large images at native resolution, not resized to the "
             "training size; --batch-size then counts tiles.")] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap, a fraction in [0, 1).")] = 0.25,
    tta_flip: Annotated[bool, typer.Option("--tta-flip", help="Also predict the mirrored image; average.")] = False,
    tta_scales: Annotated[str | None, typer.Option(
        help="Also predict resized inputs, e.g. 0.75,1,1.25; average.")] = None,
    backend: Annotated[str, typer.Option(
        help="auto (the fastest available), torch, onnxruntime or openvino.")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (torch backend).")] = False,
) -> None:
    """Label images; writes <name>_labels.png (class ids), <name>_color.png and <name>_overlay.png.

    \b
    Examples:
      pixelwise predict runs/camvid/best.safetensors data/camvid/val --out preds
      pixelwise predict runs/sat/best.safetensors big.tif --out preds --tile 512x512 --overlap 0.25 --tta-flip
    """
    from pixelwise.inference.predictor import predict_to_folder
    from pixelwise.training.config import parse_size

    tile_size = None
    if tile is not None:
        try:
            tile_size = parse_size(tile)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--tile") from None
        if min(tile_size) < 1:
            raise click.BadParameter(f"'{tile}': both sides must be at least 1 pixel", param_hint="--tile")
    if not 0 <= overlap < 1:
        raise click.BadParameter(f"{overlap} is not in [0, 1); e.g. 0.25", param_hint="--overlap")
    scales = (1.0,)
    if tta_scales is not None:
        try:
            scales = tuple(float(s) for s in tta_scales.split(","))
        except ValueError:
            scales = ()
        if not scales or not all(s > 0 for s in scales):
            raise click.BadParameter(f"'{tta_scales}' is not a comma list of positive scales, e.g. 0.75,1,1.25",
                                     param_hint="--tta-scales")
    written = predict_to_folder(checkpoint, inputs, out, batch_size, workers, overwrite, device, precision,
                                tile=tile_size, overlap=overlap, tta_flip=tta_flip, tta_scales=scales,
                                backend=backend, compile=compile, log=typer.echo)
    typer.echo(f"wrote {3 * len(written)} files for {len(written)} images to {out}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A best.safetensors written by train.")],
    format: Annotated[str, typer.Option("--format", help="onnx or openvino.")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        help="Output file; default: the checkpoint's name with .onnx (OpenVINO: .xml + .bin).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 18,
    check: Annotated[bool, typer.Option(help="Compare the runtime with PyTorch on random input.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Export a checkpoint to ONNX or OpenVINO (dynamic batch, height and width; classes and normalisation inside).

    \b
    Examples:
      pixelwise export runs/camvid/best.safetensors --format onnx
      pixelwise export runs/camvid/best.safetensors --format openvino
    """
    from pixelwise.inference.export import compare_with_runtime, export_checkpoint
    from pixelwise.models.checkpoint import load_model

    path = export_checkpoint(checkpoint, out, format, opset, overwrite)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if check:
        model = load_model(checkpoint)
        shape = (1, model.init_kwargs.get("in_channels", 3), 67, 93)  # odd on purpose: exercises the padding
        diff = compare_with_runtime(model, path, shape)
        runtime = "OpenVINO" if path.suffix == ".xml" else "onnxruntime"
        typer.echo(f"{runtime} vs PyTorch fp32 at {'x'.join(map(str, shape))}: max abs difference {diff:.2g}")


models_app = typer.Typer(rich_markup_mode=None)
app.add_typer(models_app, name="models")


# A group whose callback runs alone too: bare `pixelwise models` keeps printing the list.
@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the registered architectures; `models show NAME` summarises one.

    \b
    Examples:
      pixelwise models
      pixelwise models show unet --size 360x480
    """
    if ctx.invoked_subcommand is not None:
        return
    from pixelwise.models import list_models
    from pixelwise.models.registry import describe_model

    for name in list_models():
        typer.echo(f"{name:<16} {describe_model(name)}")


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Architecture (see `pixelwise models`).")],
    encoder: Annotated[str | None, typer.Option(help="timm encoder, e.g. resnet34.")] = None,
    size: Annotated[str, typer.Option(help="Input size HxW the shapes and GFLOPs are for.")] = "256x256",
    num_classes: Annotated[int | None, typer.Option(help="Output classes (default: the model's).")] = None,
    depth: Annotated[int, typer.Option(min=0, help="Levels of nested layers in the table.")] = 3,
) -> None:
    """Parameters, GFLOPs at --size and the layer table of one architecture (randomly initialised).

    \b
    Example:
      pixelwise models show unet --encoder resnet34 --size 352x480 --num-classes 12
    """
    from pixelwise.models import create_model
    from pixelwise.models.summary import summarize_model
    from pixelwise.training.config import parse_size

    try:
        height, width = parse_size(size)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--size") from None
    if min(height, width) < 1:
        raise click.BadParameter(f"'{size}' is not a size; both sides must be at least 1 pixel", param_hint="--size")
    # No pretrained weights: the summary needs the architecture only, never the network.
    model = create_model(name, num_classes=num_classes, encoder=encoder)
    summary = summarize_model(model, (height, width), depth=depth)
    options = ", ".join(f"{k}={v}" for k, v in model.init_kwargs.items())
    typer.echo(f"{name}({options}) at {summary.input_text}")
    typer.echo(summary.format())


def parse_model_options(items: list[str]) -> dict[str, object]:
    """``["base_filters=32", "blur=true"]`` to ``{"base_filters": 32, "blur": True}`` (values read as YAML)."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model-option '{item}': write KEY=VALUE, e.g. base_filters=32")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--model-option '{item}': the value is not valid YAML") from None
    return options


def parse_weights(text: str) -> str | list[float]:
    if text in ("auto", "median", "inverse"):
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not auto, median, inverse or a comma list of numbers",
                                 param_hint="--class-weights") from None


@datasets_app.command("inspect")
def datasets_inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: Annotated[str, typer.Option(help="Layout (auto detects it).")] = "auto",
    classes: Annotated[str | None, typer.Option(help="Class preset or classes.yaml path.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Bar chart PNG of the class shares.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero on any problem.")] = False,
) -> None:
    """Detected format, images per split, sizes, pixel share per class, and every problem found.

    \b
    Example:
      pixelwise datasets inspect ../shared/data/camvid --plot camvid-shares.png
    """
    from pixelwise.data.inspect import inspect_dataset, save_shares_plot

    report = inspect_dataset(path, format, classes)
    typer.echo(report.format_text())
    if plot is not None:
        save_shares_plot(report, plot)
        typer.echo(f"wrote {plot}")
    if strict and (report.problems or report.warnings):
        raise typer.Exit(1)


@datasets_app.command("convert")
def datasets_convert(
    src: Annotated[Path, typer.Argument(help="Dataset folder in any readable layout.")],
    to: Annotated[Path, typer.Option("--to", help="Destination folder (new or empty).")],
    format: Annotated[str, typer.Option(help="Source layout (auto detects it).")] = "auto",
    classes: Annotated[str | None, typer.Option(help="Class preset or classes.yaml path.")] = None,
    target: Annotated[str, typer.Option("--target", help="folders (index PNGs) or rle-csv.")] = "folders",
) -> None:
    """Write a dataset in the canonical folders layout (index PNGs + classes.yaml) or as RLE CSV.

    \b
    Example:
      pixelwise datasets convert data/cityscapes-pix2pix --format composite --to data/cityscapes-folders
    """
    from pixelwise.data.convert import convert_dataset

    result = convert_dataset(src, to, format, classes, target)
    typer.echo(f"wrote {result.images} images to {result.destination} ({target})")
    if result.ignored_as_background:
        typer.echo(f"note: {result.ignored_as_background} ignored pixels became background (RLE has no ignore)")


@datasets_app.command("download")
def datasets_download(
    name: Annotated[str, typer.Argument(help="camvid, oxford-pets or membrane.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to put the dataset in.")],
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Download a public dataset, verify its checksum, and unpack it safely.

    \b
    Example:
      pixelwise datasets download oxford-pets --to data
    """
    from pixelwise.data.download import download_dataset

    typer.echo(f"ready: {download_dataset(name, to, progress=progress)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every expected failure into one line and an exit code."""
    try:
        load_plugins()
        # Outside standalone mode, click returns the code of a typer.Exit raised by a command.
        code = app(args=argv, prog_name="pixelwise", standalone_mode=False)
        if isinstance(code, int):
            return code
    except CLICK_EXIT as e:
        return e.exit_code
    except CLICK_ABORT:
        return EXIT_INTERRUPTED
    except CLICK_ERRORS as e:  # usage errors: unknown option, missing argument, bad value
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `pixelwise`: the help is the answer
            print(e.format_message())
            return EXIT_USAGE
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
