"""What the command modules share: help texts read from the registries, option types, exit codes and
the parsers of option values.

The help texts are built once, when this module is imported, from the registries themselves, so a new
format, model, loss or backend shows up in ``--help`` without anyone editing a list. Plugins
(``PIXELWISE_PLUGINS`` and the ``pixelwise.plugins`` entry points) are imported first, for the same
reason: their entries belong in the help texts too.

>>> one_of(["adamw", "sgd"])
'adamw or sgd'
>>> "folders" in FORMAT_HELP and "camvid" in CLASSES_HELP
True
>>> parse_size_option("352x480", "--size")
(352, 480)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Annotated, get_args

import click
import typer

from pixelwise.core.device import PRECISIONS
from pixelwise.core.errors import PixelwiseError
from pixelwise.core.plugins import load_plugins
from pixelwise.data.formats import list_formats
from pixelwise.data.presets import list_presets
from pixelwise.inference.backends import list_backends
from pixelwise.models import list_models
from pixelwise.models.blocks import UPSAMPLERS
from pixelwise.training.config import TrainConfig, parse_size
from pixelwise.training.losses import list_losses

# A plugin that fails to import is not reported here, where an error would end as a traceback: main()
# calls load_plugins() again first thing, and a failed import is not remembered, so it fails there again
# and becomes one error line.
with contextlib.suppress(PixelwiseError):
    load_plugins()

# Exit codes besides 0 and 1: bad input or options (as click's usage errors), and Ctrl-C (as a shell's).
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def one_of(names: Iterable[str]) -> str:
    """Names as a help text lists them: ``a, b or c``."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def literal_choices(field: str) -> tuple[str, ...]:
    """The values a ``Literal[...]`` field of :class:`TrainConfig` allows (``optimizer``, ``schedule``)."""
    return get_args(TrainConfig.model_fields[field].annotation)


# Formats are listed sorted: list_formats() gives them in auto-detection order, which tells a reader nothing.
FORMAT_HELP = f"auto (detect it), {one_of(sorted(list_formats()))}; NAME:key=value,... passes options"
CLASSES_HELP = f"Class preset ({', '.join(list_presets())}) or classes.yaml path"
MODEL_HELP = f"Architecture: {one_of(list_models())} (see `pixelwise models`)."
LOSS_HELP = f"{', '.join(list_losses())}, or a sum of them such as {'+'.join(list_losses()[:2])}."
BACKEND_HELP = f"auto (the fastest available), {one_of(list_backends())}."
UPSAMPLE_HELP = f"U-Net upsampling: {one_of(UPSAMPLERS)}."
OPTIMIZER_HELP = f"{one_of(literal_choices('optimizer'))}."
SCHEDULE_HELP = f"{one_of(literal_choices('schedule'))}."

# Options several commands take, declared once. Their defaults stay with each command: `train` leaves
# them None so that a recipe's value holds unless the flag is given, the others default to "auto".
Precision = Annotated[str | None, typer.Option(help=f"{one_of(PRECISIONS)}.")]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda.")]
Workers = Annotated[int | None, typer.Option(help="Data-loading processes (default: 0 on a 2-core CPU, else 2).")]
BatchSize = Annotated[int, typer.Option(help="Images per batch.")]


def parse_size_option(text: str, param_hint: str) -> tuple[int, int]:
    """``"512x512"`` to ``(512, 512)``; anything else is a usage error naming the option."""
    try:
        size = parse_size(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=param_hint) from None
    if min(size) < 1:
        raise click.BadParameter(f"'{text}' is not a size; both sides must be at least 1 pixel", param_hint=param_hint)
    return size


InputSize = Annotated[str | None, typer.Option(help=(
    "Resize images to HxW, or 'native' (their own size), instead of the model's input size: e.g. to score a model "
    "trained at 240x320 at 360x480."))]


def parse_input_size(text: str | None) -> tuple[int, int] | None | str:
    """``--input-size``: ``"model"`` when not given (the model's own), ``None`` for native, else ``(h, w)``."""
    if text is None:
        return "model"
    if text.strip().lower() in ("native", "none"):
        return None
    return parse_size_option(text, "--input-size")


TtaFlip = Annotated[bool, typer.Option("--tta-flip", help="Also predict the mirrored image; average.")]
TtaScales = Annotated[str | None, typer.Option(help="Also predict resized inputs, e.g. 0.75,1,1.25; average.")]


def parse_scales(text: str) -> tuple[float, ...]:
    """``--tta-scales``: a comma list of positive numbers."""
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        scales = ()
    if not scales or not all(s > 0 for s in scales):
        raise click.BadParameter(f"'{text}' is not a comma list of positive scales, e.g. 0.75,1,1.25",
                                 param_hint="--tta-scales")
    return scales
