"""The ``pixelwise`` command: a thin layer over the library (typer).

Each command lives in the module named after it (``cli/train.py`` holds ``train``,
``cli/predict.py`` ``predict`` and ``export``, ...); this module gathers them into one app and runs it.
Every user-fixable problem ends as one ``error: ...`` line on stderr and a non-zero exit (2 for bad
input or options, 130 when interrupted), never a traceback.

>>> main(["train", "--epochs", "0"])
2
"""

from __future__ import annotations

import sys

import click
import typer
from typer.exceptions import TyperException

from pixelwise.cli.common import EXIT_INTERRUPTED, EXIT_USAGE
from pixelwise.cli.datasets import datasets_app
from pixelwise.cli.demo import demo
from pixelwise.cli.evaluate import evaluate
from pixelwise.cli.models import models_app
from pixelwise.cli.plan import plan
from pixelwise.cli.predict import export, predict
from pixelwise.cli.quantize import quantize
from pixelwise.cli.rank import rank
from pixelwise.cli.serve import serve
from pixelwise.cli.train import train
from pixelwise.core.errors import PixelwiseError, describe_os_error, one_line
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
# `pixelwise --help` lists the commands in this order (the groups after them).
for command in (demo, plan, train, evaluate, predict, rank, export, quantize, serve):
    app.command()(command)
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")

# Recent typer vendors its own copy of click; older releases raise click's own exceptions.
CLICK_EXIT = (typer.Exit, click.exceptions.Exit)
CLICK_ABORT = (typer.Abort, click.exceptions.Abort)
CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, TyperException)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every expected failure into one line and an exit code."""
    try:
        load_plugins()  # also done before the help texts were built; here a broken plugin is one error line
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
    except OSError as e:  # disk full, read-only or missing folders, permissions: the machine's, not a bug
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
