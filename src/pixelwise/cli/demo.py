"""``pixelwise demo``: the whole job on built-in data, from nothing to predictions in a few minutes.

>>> from pixelwise.testing import run_main
>>> "--time-budget" in run_main("demo", "--help").stdout
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import EXIT_INTERRUPTED
from pixelwise.demo import run_demo


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
    result = run_demo(out, time_budget, progress)
    if result.train.stop_reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    typer.echo(f"run: {result.run_dir}  (best.safetensors, metrics.json, report.html, curves.png, predictions/)")
    typer.echo(f"val mIoU: {result.miou:.4f}")
