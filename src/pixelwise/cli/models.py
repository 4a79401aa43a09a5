"""``pixelwise models``: the registered architectures, and ``models show NAME`` for one of them.

>>> from pixelwise.testing import run_main
>>> "unet" in run_main("models").stdout
True
"""

from __future__ import annotations

from typing import Annotated

import typer

from pixelwise.cli.common import MODEL_HELP, parse_size_option
from pixelwise.models import create_model, list_models
from pixelwise.models.registry import describe_model
from pixelwise.models.summary import summarize_model

models_app = typer.Typer(rich_markup_mode=None)


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
    for name in list_models():
        typer.echo(f"{name:<16} {describe_model(name)}")


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help=MODEL_HELP)],
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
    height, width = parse_size_option(size, "--size")
    # No pretrained weights: the summary needs the architecture only, never the network.
    model = create_model(name, num_classes=num_classes, encoder=encoder)
    summary = summarize_model(model, (height, width), depth=depth)
    options = ", ".join(f"{k}={v}" for k, v in model.init_kwargs.items())
    typer.echo(f"{name}({options}) at {summary.input_text}")
    typer.echo(summary.format())
