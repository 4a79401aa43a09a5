"""``pixelwise train`` (``pixelwise evaluate`` lives in ``cli/evaluate.py``).

``train`` builds its recipe generically: every flag named like a :class:`TrainConfig` field sets that
field when given, so a new field needs only its flag here. ``--model-option`` and ``--upsample`` are
merged into the recipe's ``model_kwargs``; ``--class-weights`` is parsed first.

>>> parse_model_options(["base_filters=32", "blur=true"])
{'base_filters': 32, 'blur': True}
>>> parse_weights("1,2.5"), parse_weights("auto")
([1.0, 2.5], 'auto')
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import yaml

from pixelwise.cli.common import (
    CLASSES_HELP,
    EXIT_INTERRUPTED,
    FORMAT_HELP,
    LOSS_HELP,
    MODEL_HELP,
    OPTIMIZER_HELP,
    SCHEDULE_HELP,
    UPSAMPLE_HELP,
    Device,
    Precision,
    Workers,
)
from pixelwise.core.errors import ConfigError, one_line
from pixelwise.core.metrics import format_table
from pixelwise.core.optional import is_installed
from pixelwise.inference.backends import write_conversion_beside
from pixelwise.training.config import TrainConfig, load_config
from pixelwise.training.folds import FoldsResult, planned_folds_config, train_or_cross_validate
from pixelwise.training.folds import summary as folds_summary
from pixelwise.training.plan_dataset import planned_config
from pixelwise.training.trainer import TrainResult


def train(
    # long function: one typer option per recipe field (the help lists them); the body is five lines.
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Recipe YAML; flags override it.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder.")] = None,
    format: Annotated[str | None, typer.Option(help=f"Dataset layout: {FORMAT_HELP}.")] = None,
    classes: Annotated[str | None, typer.Option(help=f"{CLASSES_HELP}.")] = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    encoder: Annotated[str | None, typer.Option(help="timm encoder, e.g. resnet34.")] = None,
    encoder_weights: Annotated[str | None, typer.Option(help="none, imagenet or a weights file.")] = None,
    init_from: Annotated[str | None, typer.Option(help=(
        "Start from this checkpoint's weights (same model and classes), e.g. to fine-tune at another size."))] = None,
    encoder_lr_mult: Annotated[float | None, typer.Option(help="Encoder learning rate = lr x this.")] = None,
    freeze_encoder_epochs: Annotated[int | None, typer.Option(
        help="Train only the decoder for the first N epochs.")] = None,
    upsample: Annotated[str | None, typer.Option(help=UPSAMPLE_HELP)] = None,
    compile: Annotated[bool | None, typer.Option("--compile", help="torch.compile the training forward.")] = None,
    model_option: Annotated[list[str] | None, typer.Option(
        help="Model option KEY=VALUE (YAML value), repeatable, e.g. base_filters=32.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.")] = None,
    time_budget: Annotated[str | None, typer.Option(help="Stop after this long, e.g. 30m.")] = None,
    img_size: Annotated[str | None, typer.Option(help=(
        "Training size HxW, e.g. 352x480; none: the images' own (with --crop-size)."))] = None,
    crop_size: Annotated[str | None, typer.Option(help=(
        "Train on random crops HxW of the (resized) images; with --img-size none, at their own size, and "
        "the checkpoint then predicts by tiles of this size."))] = None,
    predict_scale: Annotated[float | None, typer.Option(help=(
        "Predict images resized to --img-size and then enlarged this much, e.g. 1.5: thin things get more "
        "pixels (the model's scale augmentation showed it enlarged frames)."))] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    loss: Annotated[str | None, typer.Option(help=LOSS_HELP)] = None,
    optimizer: Annotated[str | None, typer.Option(help=OPTIMIZER_HELP)] = None,
    schedule: Annotated[str | None, typer.Option(help=SCHEDULE_HELP)] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Max gradient norm.")] = None,
    ema: Annotated[float | None, typer.Option(help=(
        "Validate and save an exponential moving average of the weights, e.g. 0.999 (decay per step)."))] = None,
    score_class: Annotated[str | None, typer.Option(help=(
        "The class whose val IoU picks the best epoch (binary foreground problems); default: the mIoU."))] = None,
    class_weights: Annotated[str | None, typer.Option(
        help="CE class weights: auto (median frequency), inverse, or a comma list.")] = None,
    precision: Precision = None,
    device: Device = None,
    workers: Workers = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early stopping after N epochs without a better mIoU.")] = None,
    final_fit: Annotated[bool | None, typer.Option("--final-fit", help=(
        "Train the final model on the train and val splits together, keeping the last epoch (its val score "
        "then measures nothing: report the score of the run that validated the recipe)."))] = None,
    folds: Annotated[int | None, typer.Option(help=(
        "K-fold cross-validation: K runs in RUN/fold_k, each validated on its K-th of the train split, "
        "scored out of fold; the time budget is shared."))] = None,
    out: Annotated[str | None, typer.Option(help="Run folder (default: runs/<time>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly.")] = False,
    save_every: Annotated[str | None, typer.Option(help=(
        "Also save last/ inside epochs this often: 10m (the default), 500steps, or epoch (ends of epochs only); "
        "a kill loses at most this much."))] = None,
    max_bad_batches: Annotated[int | None, typer.Option(help=(
        "Skip at most N batches with a NaN/inf loss or gradient (each logged with its files), then stop."))] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")] = None,
    plan: Annotated[bool | None, typer.Option("--plan/--no-plan", help=(
        "Plan the recipe from the dataset's fingerprint and this machine's speed (flags win). Default: "
        "plan when there is neither --config nor --epochs."))] = None,
    openvino: Annotated[bool, typer.Option("--openvino/--no-openvino", help=(
        "When the run ends, also write the best checkpoint as OpenVINO IR beside it (best.xml + best.bin, "
        "when openvino is installed), so that predict runs it on the CPU from the first image, converting "
        "nothing."))] = True,
    int8: Annotated[bool, typer.Option("--int8", help=(
        "When the run ends, also quantize the best checkpoint to int8 (best_int8.xml, NNCF, calibrated on 300 "
        "training images) and print its accuracy against fp32 on the val split, as `pixelwise quantize` does; "
        "needs pixelwise[int8]."))] = False,
) -> None:
    """Train a model; writes RUN_DIR/best.safetensors, metrics.csv, plots and report.html.

    \b
    Examples:
      pixelwise train --data data/camvid --time-budget 60m          (a planned recipe)
      pixelwise train --data data/camvid --epochs 40 --img-size 352x480 --out runs/camvid
      pixelwise train --config configs/camvid.yaml --time-budget 30m
      pixelwise train --data data/camvid --folds 5 --time-budget 2h --out runs/cv   (cross-validation)
      pixelwise train --out runs/camvid --resume
    """
    # Every option reaches the recipe by name through ctx.params, which is why most are not used here.
    result = train_from_flags(ctx.params)
    finished = result.is_main and result.stop_reason != "interrupted"  # Ctrl-C: the user wants out, not an export
    if openvino and finished and isinstance(result, TrainResult) and result.best_checkpoint.is_file():
        write_openvino_beside(result.best_checkpoint)  # before the report, whose line is the last
    if int8 and finished and isinstance(result, TrainResult) and result.best_checkpoint.is_file():
        write_int8_beside(result)
    if result.is_main:  # under torchrun / accelerate launch only the first process reports
        report_training(result)
    if result.stop_reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def train_from_flags(flags: dict[str, Any]) -> TrainResult | FoldsResult:
    """Train with a planned recipe (``--plan``, or neither ``--config`` nor ``--epochs`` given) or the recipe
    the flags and ``--config`` make; the plan is printed first. With ``--folds`` (also from the recipe) the
    folds of a cross-validation are trained, each with that recipe."""
    plan, resume = flags["plan"], flags["resume"]
    if plan if plan is not None else (flags["config"] is None and flags["epochs"] is None and not resume):
        given = given_fields(flags)
        recipe, planned = planned_folds_config(given) if given.get("folds") else planned_config(given)
        typer.echo("plan (values planned from the dataset's fingerprint and this machine's speed; flags win):")
        typer.echo(planned.to_yaml().rstrip())
        return train_or_cross_validate(recipe, resume=resume, plan=planned.records())
    return train_or_cross_validate(build_recipe(flags), resume=resume)


def build_recipe(flags: dict[str, Any]) -> TrainConfig:
    """The recipe of a run from ``train``'s options by name (``None``: not given).

    ``--config`` is the base; with ``--resume`` and no ``--config`` it is RUN/config.yaml, so a resumed
    run keeps its recipe and the flags extend it.
    """
    config, out = flags["config"], flags["out"]
    if flags["resume"] and config is None and out is not None and (Path(out) / "config.yaml").is_file():
        config = Path(out) / "config.yaml"
    fields = given_fields(flags)
    options = fields.pop("model_kwargs", {})
    recipe = load_config(config, **fields)
    if options:  # merged into the recipe's model_kwargs rather than replacing them; validated on assignment
        recipe.model_kwargs = {**recipe.model_kwargs, **options}
    return recipe


def given_fields(flags: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig fields the flags set: every given option named like a field, ``--class-weights``
    parsed, ``--model-option`` and ``--upsample`` gathered into ``model_kwargs``."""
    fields = {name: value for name, value in flags.items() if name in TrainConfig.model_fields and value is not None}
    if flags["class_weights"] is not None:
        fields["class_weights"] = parse_weights(flags["class_weights"])
    options = parse_model_options(flags["model_option"] or [])
    if flags["upsample"] is not None:
        options["upsample"] = flags["upsample"]
    if options:
        fields["model_kwargs"] = options
    return fields


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
    """``--class-weights``: a named rule (``auto``, ``median``, ``inverse``) or a comma list of numbers."""
    if text in ("auto", "median", "inverse"):
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not auto, median, inverse or a comma list of numbers",
                                 param_hint="--class-weights") from None


def report_training(result: TrainResult | FoldsResult) -> None:
    """The best epoch's table, where the run is and why it stopped; or a cross-validation's scores."""
    if isinstance(result, FoldsResult):
        typer.echo(folds_summary(result))
        return
    if result.best_metrics:
        typer.echo(format_table(result.best_metrics))
    typer.echo(f"run: {result.run_dir} ({result.stop_reason}, {result.epochs_done} epochs)")
    if result.best_metrics:
        typer.echo(f"best val mIoU: {result.best_metrics['miou']:.4f}  ->  {result.best_checkpoint}")
    if result.report is not None:  # the last line: where to look first
        typer.echo(f"report: {result.report}")


def write_openvino_beside(checkpoint: Path) -> None:
    """Write ``checkpoint``'s OpenVINO IR beside it for predict's ``auto`` rule, and say so.

    Never fails the run: the checkpoint is already written, and without the IR predict still works (it runs
    PyTorch, or converts when a job is long enough to pay for it). So a failure is one warning line.
    """
    if not is_installed("openvino"):
        return
    start = time.perf_counter()
    try:
        path = write_conversion_beside(checkpoint, "openvino")
    except Exception as e:  # any failure of the export (a model the exporter cannot take, a full disk) is a warning
        typer.echo(f"warning: {checkpoint}: could not write its OpenVINO model for predict ({one_line(e)}); "
                   "predict runs the checkpoint as before", err=True)
        return
    typer.echo(f"openvino: {path} ({time.perf_counter() - start:.1f} s); predict runs it with no conversion")


def write_int8_beside(result: TrainResult) -> None:
    """Quantize the run's best checkpoint to ``best_int8.xml`` beside it, calibrated on the run's training split
    and scored on its val split, and print the accuracy report's summary line.

    Like the OpenVINO IR, never fails the run (the checkpoint is written and ``pixelwise quantize`` can do
    this later), so a failure, nncf missing included, is one warning line.
    """
    from pixelwise.cli.quantize import summary  # here: the int8 code imports OpenVINO, which train often needs not
    from pixelwise.inference.quantize import quantize_model

    recipe = load_config(result.run_dir / "config.yaml")
    try:
        written, report = quantize_model(result.best_checkpoint, recipe.data, split=recipe.val_split,
                                         calib_split=recipe.train_split, data_format=recipe.format,
                                         overwrite=True, log=typer.echo)
    except Exception as e:  # nncf missing, a model NNCF cannot take, a full disk: the run itself is done
        typer.echo(f"warning: {result.best_checkpoint}: could not write its int8 model ({one_line(e)}); "
                   f"`pixelwise quantize {result.best_checkpoint} --calib {recipe.data}` tries again", err=True)
        return
    typer.echo(f"int8: {written}; {report['split']} ({report['images']} images): {summary(report)}")
