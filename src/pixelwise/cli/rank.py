"""``pixelwise rank``: which images to label next, the ones the model is least sure about first.

The library behind it is :mod:`pixelwise.inference.ranking`; checkpoints and images are told apart as
``predict`` tells them (model files first, the images from the first argument that is not one).

>>> from pixelwise.testing import run_main
>>> run_main("rank", "--help").returncode
0
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from pixelwise.cli.common import BACKEND_HELP, BatchSize, Device, Precision, one_of, parse_size_option
from pixelwise.cli.predict import split_models
from pixelwise.core.files import write_text
from pixelwise.inference.ranking import SCORES, rank_images, ranking_csv

SHOWN = 5  # rows printed; the CSV holds them all


def rank(
    checkpoint: Annotated[Path, typer.Argument(
        help="A best.safetensors written by train (or an exported .onnx / OpenVINO .xml). More model files right "
             "after it: a committee of one task, for --by disagreement.")],
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns (after the models).")],
    by: Annotated[str, typer.Option(
        help=f"{one_of(SCORES.names())}: the mean per-pixel entropy over log(classes), 1 - the margin between the "
             "two likeliest classes, or how much several checkpoints disagree (mean KL to their mean).")] = "entropy",
    top: Annotated[int | None, typer.Option(min=1, help="Keep only the N most uncertain images.")] = None,
    out: Annotated[Path, typer.Option(help="The ranking, a CSV: rank,image,score and every score.")] = Path(
        "ranking.csv"),
    maps: Annotated[Path | None, typer.Option(
        help="Also write each image's <name>_uncertainty.png (score --by, 0 certain .. 255 most uncertain) here.")
    ] = None,
    batch_size: BatchSize = 4,
    workers: Annotated[int | None, typer.Option(
        help="Decoding processes (default: 0 on a 2-core CPU, else 2).")] = None,
    precision: Precision = "auto",
    device: Device = "auto",
    tile: Annotated[str | None, typer.Option(
        help="Tiled prediction HxW, e.g. 512x512, as in predict; default: the checkpoint's own; 'none' never "
             "tiles.")] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap, a fraction in [0, 1).")] = 0.25,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
) -> None:
    """Rank images by how unsure the model is about them: label the first ones next (active learning).

    \b
    Examples:
      pixelwise rank runs/camvid/best.safetensors unlabelled/ --top 50
      pixelwise rank runs/camvid/best.safetensors unlabelled/ --by margin --maps uncertainty/
      pixelwise rank runs/seed0/best.safetensors runs/seed1/best.safetensors unlabelled/ --by disagreement
    """
    models, inputs = split_models(checkpoint, inputs)
    tile_size = "train" if tile is None else None if tile.lower() == "none" else parse_size_option(tile, "--tile")
    if not 0 <= overlap < 1:
        raise click.BadParameter(f"{overlap} is not in [0, 1); e.g. 0.25", param_hint="--overlap")
    ranked = rank_images(models, inputs, by, maps, batch_size, workers, progress=True, log=typer.echo,
                         device=device, precision=precision, backend=backend, tile=tile_size, overlap=overlap)
    write_text(out, ranking_csv(ranked, by, top))
    kept = ranked[:top] if top is not None else ranked
    typer.echo(f"most uncertain first, by {by}:")
    for k, item in enumerate(kept[:SHOWN], start=1):
        typer.echo(f"  {k:>3}  {item.scores[by]:.4f}  {item.image}")
    maps_note = f"; uncertainty maps of {len(ranked)} images in {maps}" if maps is not None else ""
    typer.echo(f"wrote {out} ({len(kept)} of {len(ranked)} images){maps_note}")
