"""The files a training run writes into its folder, each written atomically (see :mod:`pixelwise.core.files`).

A run folder holds everything a run wrote::

    RUN_DIR/config.yaml         the full recipe (resume and reproduce from it)
    RUN_DIR/classes.yaml        the classes, when they were inferred from the masks (config.yaml names it)
    RUN_DIR/best.safetensors    weights + metadata of the epoch with the best val mIoU
    RUN_DIR/best_metrics.json   that epoch's validation metrics
    RUN_DIR/last/               full training state of the latest step (``--resume`` continues it)
    RUN_DIR/metrics.csv         one row per epoch
    RUN_DIR/curves.png          loss and val mIoU per epoch
    RUN_DIR/predictions.png     image | truth | prediction for a few validation images
    RUN_DIR/report.html         all of the above on one page, with the best and worst validation images
    RUN_DIR/stage_1/            a staged run's first stage (a run folder itself); RUN_DIR holds the final one

Only rank 0 calls these writers; a crash or Ctrl-C at any moment leaves every file whole (the old
version or the new one). ``curves.png`` and ``predictions.png`` are drawn with matplotlib, which
:mod:`pixelwise.core.viz` imports; it is imported where a plot is drawn, not with this module: it
takes about half a second, and ``import pixelwise`` (which imports the trainer) should not pay it.

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> write_history(run, [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_miou": 0.4}])
>>> (run / "metrics.csv").read_text().splitlines()
['epoch,train_loss,val_loss,val_miou', '1,0.9,0.8,0.4']
>>> sorted(p.name for p in run.iterdir())
['curves.png', 'metrics.csv']
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import yaml

from pixelwise.core.files import atomic_path, write_json, write_text
from pixelwise.data.classes import ClassSpec
from pixelwise.data.dataset import SegmentationDataset
from pixelwise.data.io import read_image
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
from pixelwise.training.config import TrainConfig

BEST_CHECKPOINT = "best.safetensors"
BEST_METRICS = "best_metrics.json"
INFERRED_CLASSES = "classes.yaml"
STAGE_1 = "stage_1"  # a staged run's first stage (see training/stages.py)

Preview = tuple[np.ndarray, np.ndarray, np.ndarray]  # image, truth, prediction


def write_config(run_dir: Path, config: TrainConfig, inferred_classes: ClassSpec | None = None,
                 plan: list[dict[str, Any]] | None = None) -> None:
    """``config.yaml``: the full recipe, which ``--resume`` and a rerun read back.

    Classes inferred from the masks (the data had no classes.yaml) are written to ``classes.yaml`` in
    the run folder and the recipe's ``classes`` points at it, so a rerun or ``--resume`` uses exactly
    these classes rather than inferring again. A planned run (``plan``: the planner's records) also
    gets ``plan.yaml``, and each line of ``config.yaml`` says whether its value was planned (and why)
    or given.
    """
    if inferred_classes is not None:
        with atomic_path(run_dir / INFERRED_CLASSES) as tmp:
            inferred_classes.to_yaml(tmp)
        config = config.model_copy(update={"classes": str(run_dir / INFERRED_CLASSES)})
    write_text(run_dir / "config.yaml", commented_yaml(config.model_dump(mode="json"), plan))
    if plan:
        write_text(run_dir / "plan.yaml", yaml.safe_dump(plan, sort_keys=False))


def commented_yaml(values: dict[str, Any], plan: list[dict[str, Any]] | None = None) -> str:
    """``values`` as YAML, one key after another, the first line of each planned or given key commented.

    >>> print(commented_yaml({"lr": 0.002, "seed": 0}, [{"key": "lr", "source": "planned", "reason": "one-cycle"}]))
    lr: 0.002  # planned: one-cycle
    seed: 0
    <BLANKLINE>
    """
    notes = {r["key"]: "given" if r["source"] == "given" else f"planned: {r['reason']}" for r in plan or []}
    lines: list[str] = []
    for key, value in values.items():
        text = yaml.safe_dump({key: value}, sort_keys=False).rstrip("\n").split("\n")
        if key in notes:
            text[0] += f"  # {notes[key]}"
        lines += text
    return "\n".join(lines) + "\n"


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.csv`` (one row per epoch) and ``curves.png`` (losses and val mIoU per epoch)."""
    with atomic_path(run_dir / "metrics.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    from pixelwise.core.viz import plot_curves  # matplotlib: heavy, see the module docstring

    plot_curves(history, run_dir / "curves.png")


class PreviewCollector:
    """Keeps image | truth | prediction of the first ``limit`` validation images, for ``predictions.png``.

    Called by the evaluation with each batch and its full-resolution predictions; ``limit`` 0 keeps nothing
    (the processes other than rank 0, which write no files).
    """

    def __init__(self, dataset: SegmentationDataset, limit: int) -> None:
        self.dataset, self.limit = dataset, limit
        self.previews: list[Preview] = []

    def __call__(self, batch: dict, predictions: torch.Tensor) -> None:
        for k in range(len(batch["index"])):
            if len(self.previews) >= self.limit:
                return
            sample = self.dataset.samples[int(batch["index"][k])]
            mh, mw = (int(s) for s in batch["mask_size"][k])
            image = read_image(sample.image)
            self.previews.append((image, batch["mask"][k, :mh, :mw].numpy(), predictions[k, :mh, :mw].numpy()))


def save_best(run_dir: Path, model: nn.Module, meta: CheckpointMeta, metrics: dict[str, Any], epoch_number: int,
              previews: list[Preview], classes: ClassSpec) -> None:
    """``best.safetensors`` (its metadata names the epoch), ``best_metrics.json`` and ``predictions.png``."""
    meta.extra = {"epoch": epoch_number, "val_miou": metrics["miou"]}
    save_checkpoint(run_dir / BEST_CHECKPOINT, model, meta)
    write_json(run_dir / BEST_METRICS, metrics)
    if previews:
        from pixelwise.core.viz import save_grid  # matplotlib: heavy, see the module docstring

        save_grid(previews, classes.palette, classes.names, run_dir / "predictions.png",
                  title="validation: image | truth | prediction (best epoch)")


def read_best_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics of the run's best epoch so far (empty before its first validation)."""
    path = run_dir / BEST_METRICS
    return json.loads(path.read_text()) if path.is_file() else {}
