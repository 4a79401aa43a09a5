"""``pixelwise plan``: the recipe the planner derives for a dataset, with the reason for every value.

>>> from pixelwise.testing import run_main
>>> run_main("plan", "--help").returncode
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import CLASSES_HELP, FORMAT_HELP
from pixelwise.core.files import write_text
from pixelwise.training.plan_dataset import DEFAULT_BUDGET, planned_config


def plan(
    data: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: Annotated[str, typer.Option(help=f"Dataset layout: {FORMAT_HELP}.")] = "auto",
    classes: Annotated[str | None, typer.Option(help=f"{CLASSES_HELP}.")] = None,
    time_budget: Annotated[str, typer.Option(help="Training time the plan is for, e.g. 60m.")] = DEFAULT_BUDGET,
    out: Annotated[Path | None, typer.Option(help="Write the plan as a recipe (train --config reads it).")] = None,
) -> None:
    """Measure the dataset (fingerprint) and this machine's training speed, and print the planned recipe.

    The first run on a machine times a few training steps of each candidate model (cached afterwards).

    \\b
    Examples:
      pixelwise plan data/camvid --time-budget 60m
      pixelwise plan data/membrane --time-budget 15m --out membrane.yaml && pixelwise train --config membrane.yaml
    """
    given = {"data": str(data), "format": format, "classes": classes, "time_budget": time_budget}
    _, planned = planned_config({k: v for k, v in given.items() if v is not None})
    typer.echo(planned.fingerprint.format_text())
    typer.echo("")
    text = planned.to_yaml()
    typer.echo(text.rstrip())
    if out is not None:
        header = f"# Planned by `pixelwise plan {data} --time-budget {time_budget}`; edit any value, then\n" \
                 f"# pixelwise train --config {out}\n"
        write_text(out, header + text)
        typer.echo(f"wrote {out}")
