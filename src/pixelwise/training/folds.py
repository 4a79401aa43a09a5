"""K-fold cross-validation of a recipe, as nnU-Net does it: ``pixelwise train ... --folds K --out RUN``.

The images of the training split are dealt into K folds (:func:`~pixelwise.training.data_setup.fold_split`:
seeded by the recipe's ``seed``, decided by file names alone). Fold ``k`` is a normal run in ``RUN/fold_k``
that trains on the other K-1 folds and validates on fold ``k``. The validation split is never seen by any
fold, so it can still score their ensemble honestly at the end. When every fold is trained:

* each fold's best checkpoint scores the images it held out, and the K confusion matrices are summed: the
  *out-of-fold* (OOF) score covers every training image once, each predicted by a model that did not
  train on it (a steadier estimate than one validation split);
* the ensemble of the K best checkpoints scores the validation split, when the dataset has one.

A time budget is the whole cross-validation's: each fold gets an equal share. ``--resume`` skips the folds
that finished, continues the one that was interrupted and starts the rest. RUN holds::

    RUN/config.yaml          the recipe of the whole cross-validation (``--resume`` reads it)
    RUN/fold_0 ... fold_K-1  one run folder per fold (see :mod:`pixelwise.training.outputs`)
    RUN/cv_metrics.json      the scores above: OOF metrics and confusion matrix, each fold's mIoU, the ensemble's

>>> config = TrainConfig(data="data/camvid", folds=5, time_budget="1h")
>>> fold = fold_config(config, Path("runs/cv"), 4)
>>> fold.fold, Path(fold.out).name, fold.time_budget
(4, 'fold_4', '720s')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelwise.core.errors import CheckpointError, ConfigError
from pixelwise.core.files import write_json
from pixelwise.core.metrics import ConfusionMatrix, format_table
from pixelwise.core.yamlfile import read_yaml
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.models.checkpoint import load_checkpoint
from pixelwise.training import outputs
from pixelwise.training.config import TrainConfig, parse_duration, seconds_text
from pixelwise.training.data_setup import chosen_splits, fold_split
from pixelwise.training.distributed import is_main_process, log
from pixelwise.training.evaluate import evaluate_checkpoint, score_samples
from pixelwise.training.plan import Plan
from pixelwise.training.plan_dataset import DEFAULT_BUDGET, planned_config
from pixelwise.training.run_dir import check_runs_recipe, clear_unstarted, new_runs_dir, run_progress
from pixelwise.training.stages import train_in_stages
from pixelwise.training.trainer import TrainResult, train

CV_METRICS = "cv_metrics.json"


@dataclass
class FoldsResult:
    """What :func:`train_folds` returns: where the run is, the folds' best checkpoints and the scores."""

    run_dir: Path
    checkpoints: list[Path]  # RUN/fold_k/best.safetensors, k = 0 .. K-1
    metrics: dict[str, Any] | None  # cv_metrics.json; None when interrupted, and in the other DDP processes
    stop_reason: str  # "folds done" or "interrupted"
    is_main: bool = True  # False in the other processes of a DDP job: they print nothing


def fold_dir(run_dir: Path, fold: int) -> Path:
    return run_dir / f"fold_{fold}"


def share_of_budget(time_budget: str, folds: int) -> str:
    """One fold's even share of a time budget, in seconds.

    >>> share_of_budget("1h", 5), share_of_budget("100s", 3)
    ('720s', '33.33s')
    """
    return seconds_text((parse_duration(time_budget) or 0.0) / folds)


def fold_count(config: TrainConfig) -> int:
    """K, for a recipe that asks for a cross-validation (``folds`` set, ``fold`` not)."""
    if config.folds is None or config.fold is not None:
        raise ConfigError("a cross-validation needs folds (K >= 2) and no fold; a single fold trains with train()")
    return config.folds


def fold_config(config: TrainConfig, run_dir: Path, fold: int) -> TrainConfig:
    """Fold ``fold``'s recipe: the cross-validation's, with that fold, its folder and its share of the budget."""
    update: dict[str, Any] = {"fold": fold, "out": str(fold_dir(run_dir, fold))}
    if config.time_budget is not None:
        update["time_budget"] = share_of_budget(config.time_budget, fold_count(config))
    return TrainConfig.model_validate({**config.model_dump(), **update})


def train_or_cross_validate(config: TrainConfig, resume: bool = False, plan: list[dict[str, Any]] | None = None
                            ) -> TrainResult | FoldsResult:
    """:func:`train_folds` for a recipe with ``folds`` (and no ``fold``), :func:`~pixelwise.training.stages.
    train_in_stages` for one with ``final_stage``, else one training run."""
    if config.folds is not None and config.fold is None:
        return train_folds(config, resume, plan)
    if config.final_stage is not None:
        return train_in_stages(config, resume, plan)
    return train(config, resume, plan)


def train_folds(config: TrainConfig, resume: bool = False, plan: list[dict[str, Any]] | None = None) -> FoldsResult:
    """Train folds 0 .. K-1 one after another into RUN/fold_k, then score them (see the module docstring).

    ``resume``: continue RUN (``config.out``), skipping the folds that finished. ``plan``: the planner's
    records, when the recipe was planned; each fold's folder keeps them, as a planned run's does.
    """
    folds = fold_count(config)
    run_dir = folds_run_dir(config, resume, plan)
    if config.time_budget is not None:
        log(f"time budget {config.time_budget} shared evenly by the {folds} folds: "
            f"{share_of_budget(config.time_budget, folds)} each")
    checkpoints = [fold_dir(run_dir, k) / outputs.BEST_CHECKPOINT for k in range(folds)]
    for k in range(folds):
        result = train_fold(fold_config(config, run_dir, k), plan)
        if result is not None and result.stop_reason == "interrupted":
            log(f"interrupted in fold {k}; continue the cross-validation with: pixelwise train --out {run_dir} "
                "--resume")
            return FoldsResult(run_dir, checkpoints, None, "interrupted", result.is_main)
    if not is_main_process():
        return FoldsResult(run_dir, checkpoints, None, "folds done", is_main=False)
    metrics = score_folds(config, run_dir)
    write_json(run_dir / CV_METRICS, metrics)
    return FoldsResult(run_dir, checkpoints, metrics, "folds done")


def train_fold(fold: TrainConfig, plan: list[dict[str, Any]] | None = None) -> TrainResult | None:
    """Train one fold, or continue it; None when it had finished already."""
    folder, name = Path(str(fold.out)), f"fold {fold.fold} of {fold.folds}"
    progress = run_progress(fold)
    if progress == "finished":
        log(f"{name}: finished earlier, kept ({folder})")
        return None
    if progress == "new" and is_main_process():
        clear_unstarted(folder)
    log(f"{name}: trains on the other folds of '{fold.train_split}', validates on this one -> {folder}")
    result = train(fold, resume=progress == "unfinished", plan=plan)
    if result.stop_reason != "interrupted":
        best = result.best_metrics.get("miou", math.nan)
        log(f"{name}: best held-out mIoU {best:.4f} ({result.stop_reason}, {result.epochs_done} epochs)")
    return result


def folds_run_dir(config: TrainConfig, resume: bool, plan: list[dict[str, Any]] | None) -> Path:
    """RUN: with ``resume`` the cross-validation to continue; else a new folder, holding the recipe.

    The data is checked first (it can be read, and has an image per fold at least), so a recipe that cannot
    train leaves no folder behind.
    """
    if resume:
        if config.out is None or not (Path(config.out) / "config.yaml").is_file():
            raise ConfigError(f"{config.out}: no cross-validation to resume here (no config.yaml); "
                              "train without --resume to start one")
        check_same_folds(Path(config.out), config)
        return Path(config.out)
    check_runs_recipe(config, "cross-validation")
    index = open_dataset(str(config.data), config.format, config.classes)
    fold_split(index.split(config.train_split), fold_count(config), 0, config.seed)  # enough images?
    return new_runs_dir(config, plan)


def check_same_folds(run_dir: Path, config: TrainConfig) -> None:
    """Refuse to resume RUN with settings that deal other folds: its finished folds would not fit them."""
    saved = read_yaml(run_dir / "config.yaml", ConfigError, "not found") or {}
    if saved.get("folds") is None:
        raise ConfigError(f"{run_dir}: a single run, not a cross-validation; resume it without --folds")
    for key in ("folds", "seed", "train_split"):
        if saved.get(key) != getattr(config, key):
            raise ConfigError(f"{run_dir}: its cross-validation has {key} {saved.get(key)}, not "
                              f"{getattr(config, key)}; resume it without changing {key}")


def score_folds(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """``cv_metrics.json``: the folds' out-of-fold metrics and confusion matrix, each fold's mIoU on the
    images it held out, and the metrics of their ensemble on the validation split (None without one)."""
    log("scoring each fold's best checkpoint on the images it held out")
    total: ConfusionMatrix | None = None
    per_fold = []
    for k in range(fold_count(config)):
        fold = fold_config(config, run_dir, k)
        cm, images, index = score_held_out(fold)
        if total is None:
            total = ConfusionMatrix(cm.num_classes, cm.names)
        if cm.names != total.names:
            raise CheckpointError(f"{fold.out}: predicts other classes than fold 0; the folds cannot be added up")
        total.mat += cm.mat  # the folds hold out disjoint images: their counts add up exactly
        per_fold.append({"fold": k, "run": str(fold.out), "images": images, "miou": cm.compute()["miou"]})
    assert total is not None  # K >= 2 folds were scored
    checkpoints = [str(fold_dir(run_dir, k) / outputs.BEST_CHECKPOINT) for k in range(len(per_fold))]
    ensemble = None
    if index.splits.get(config.val_split):
        log(f"scoring the ensemble of the {len(per_fold)} folds on '{config.val_split}'")
        ensemble = evaluate_checkpoint(checkpoints, config.data or "", config.val_split, config.format, None,
                                       config.batch_size, config.workers, config.device, config.precision)
    return {**total.compute(), "split": config.train_split, "images": sum(f["images"] for f in per_fold),
            "folds": len(per_fold), "seed": config.seed, "per_fold": per_fold, "confusion": total.mat.tolist(),
            "ensemble": ensemble, "ensemble_command": ensemble_command(run_dir)}


def score_held_out(fold: TrainConfig) -> tuple[ConfusionMatrix, int, DatasetIndex]:
    """A fold's best checkpoint on the images it held out: their confusion matrix, their number, the dataset."""
    checkpoint = Path(str(fold.out)) / outputs.BEST_CHECKPOINT
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: missing; the fold never saved a best epoch (no validation scored)")
    model, meta = load_checkpoint(checkpoint)
    index = open_dataset(str(fold.data), fold.format, meta.classes)  # read as the model predicts, as evaluate does
    held_out = chosen_splits(fold, index)[1]
    cm = score_samples(model, meta, index, held_out, fold.batch_size, fold.workers, fold.device, fold.precision)
    return cm, len(held_out), index


def ensemble_command(run_dir: Path) -> str:
    """The command that predicts with the ensemble of the folds' best checkpoints."""
    return f"pixelwise predict {run_dir.as_posix()}/fold_*/{outputs.BEST_CHECKPOINT} IMAGES --out preds"


def summary(result: FoldsResult) -> str:
    """What ``pixelwise train --folds`` prints at the end: the out-of-fold table and mIoU, each fold's mIoU,
    the ensemble's score on the validation split, where the scores are and how to predict with the folds."""
    metrics = result.metrics
    if metrics is None:
        return f"cross-validation: {result.run_dir} ({result.stop_reason})"
    per_fold = ", ".join(f"{f['miou']:.4f}" for f in metrics["per_fold"])
    lines = [format_table(metrics),
             f"out-of-fold mIoU {metrics['miou']:.4f} over the {metrics['images']} '{metrics['split']}' images "
             f"(per fold: {per_fold})"]
    ensemble = metrics["ensemble"]
    if ensemble is not None:
        lines.append(f"ensemble of the {metrics['folds']} folds on '{ensemble['split']}': mIoU "
                     f"{ensemble['miou']:.4f} ({ensemble['images']} images)")
    lines.append(f"cross-validation: {result.run_dir} (scores in {CV_METRICS})")
    lines.append(f"predict with the ensemble of the {metrics['folds']} folds: {metrics['ensemble_command']}")
    return "\n".join(lines)


def planned_folds_config(given: dict[str, Any]) -> tuple[TrainConfig, Plan]:
    """:func:`~pixelwise.training.plan_dataset.planned_config` for a cross-validation (``given["folds"]``).

    The time budget (``--time-budget``, else the planner's default) is the whole run's; the recipe is planned
    once, for one fold's share of it, and every fold trains that recipe. The recipe returned holds the whole
    budget again: :func:`train_folds` shares it out.
    """
    total = str(given.get("time_budget") or DEFAULT_BUDGET)
    recipe, plan = planned_config({**given, "time_budget": share_of_budget(total, given["folds"])})
    recipe.time_budget = total
    return recipe, plan
