"""``pixelwise datasets inspect | convert | download``: the dataset tools.

>>> from pixelwise.testing import run_main
>>> result = run_main("datasets", "download", "cityscapes", "--to", "/nonexistent")
>>> result.returncode, "needs a login" in result.stderr
(2, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import CLASSES_HELP, FORMAT_HELP, one_of
from pixelwise.data.convert import convert_dataset, targets
from pixelwise.data.download import DATASETS, download_dataset
from pixelwise.data.fingerprint import fingerprint_dataset
from pixelwise.data.inspect import inspect_dataset, save_shares_plot

datasets_app = typer.Typer(help="Inspect, convert and download datasets.", no_args_is_help=True,
                           rich_markup_mode=None)


@datasets_app.command("inspect")
def datasets_inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: Annotated[str, typer.Option(help=f"Layout: {FORMAT_HELP}.")] = "auto",
    classes: Annotated[str | None, typer.Option(help=f"{CLASSES_HELP}.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Bar chart PNG of the class shares.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero on any problem.")] = False,
    fingerprint: Annotated[bool, typer.Option("--fingerprint/--no-fingerprint", help=(
        "Also measure the training split's fingerprint (colour, object thickness per class: what a "
        "recipe depends on)."))] = True,
) -> None:
    """Detected format, images per split, sizes, pixel share per class, every problem found, and the
    fingerprint the planner reads.

    \b
    Example:
      pixelwise datasets inspect ../shared/data/camvid --plot camvid-shares.png
    """
    report = inspect_dataset(path, format, classes)
    typer.echo(report.format_text())
    if fingerprint and not report.problems and "train" in report.splits:
        typer.echo("\nfingerprint of the train split (what `pixelwise plan` reads):")
        typer.echo(fingerprint_dataset(path, format, classes).format_text())
    if plot is not None:
        save_shares_plot(report, plot)
        typer.echo(f"wrote {plot}")
    if strict and (report.problems or report.warnings):
        raise typer.Exit(1)


@datasets_app.command("convert")
def datasets_convert(
    src: Annotated[Path, typer.Argument(help="Dataset folder in any readable layout.")],
    to: Annotated[Path, typer.Option("--to", help="Destination folder (new or empty).")],
    format: Annotated[str, typer.Option(help=f"Source layout: {FORMAT_HELP}.")] = "auto",
    classes: Annotated[str | None, typer.Option(help=f"{CLASSES_HELP}.")] = None,
    target: Annotated[str, typer.Option("--target", help=(
        f"Layout to write: {one_of(targets())}; a labelling tool's name writes images/ and its import file, "
        "to correct the labels there."))] = "folders",
) -> None:
    """Write a dataset in the canonical folders layout (index PNGs + classes.yaml), as RLE CSV, or as a
    labelling tool's import file (Label Studio tasks, COCO, ...).

    \b
    Examples:
      pixelwise datasets convert data/cityscapes-pix2pix --format composite --to data/cityscapes-folders
      pixelwise datasets convert data/cells --to data/cells-ls --target label-studio
    """
    result = convert_dataset(src, to, format, classes, target)
    typer.echo(f"wrote {result.images} images to {result.destination} ({target})")
    if result.ignored_as_background:
        typer.echo(f"note: {result.ignored_as_background} ignored pixels became background ({target} has no ignore)")


@datasets_app.command("download")
def datasets_download(
    name: Annotated[str, typer.Argument(help=f"{one_of(DATASETS)}.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to put the dataset in.")],
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Download a public dataset, verify its checksum, and unpack it safely.

    \b
    Example:
      pixelwise datasets download oxford-pets --to data
    """
    typer.echo(f"ready: {download_dataset(name, to, progress=progress)}")
