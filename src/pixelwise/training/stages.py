"""A run in two stages: most of the budget at one size, the last share at another (the recipe's ``final_stage``).

Whole frames shrunk for speed train many epochs in the budget; a short last stage on frames at their own size
then teaches the model their sharp look, thin poles and signs included. On CamVid (45 minutes at 240x320, then
15 at 360x480) this is the flagship recipe (README "CamVid"). ``pixelwise train`` runs both stages in one
command::

    RUN/config.yaml     the whole recipe, final_stage included (``--resume`` reads it)
    RUN/stage_1/        the first stage: a run folder of its own, with its best checkpoint and report
    RUN/...             the final stage: best.safetensors, metrics.csv, report.html, as any run

The first stage trains the recipe for (1 - share) of its time budget (or epochs). The final stage starts from
the first stage's best weights (``init_from``) at ``final_stage.img_size``, in ``final_stage.batch_size``, with a
fresh schedule whose peak is the recipe's lr times ``lr_scale``, for the rest. Each stage keeps its best epoch by
its own validation, at its own size. ``--resume`` continues the stage that was interrupted.

>>> config = TrainConfig(data="data/camvid", img_size="240x320", time_budget="1h", out="runs/camvid",
...                      final_stage={"img_size": "360x480", "batch_size": 4})
>>> first, final = stage_configs(config)
>>> first.img_size, first.time_budget, Path(first.out).name, first.final_stage
((240, 320), '2700s', 'stage_1', None)
>>> final.img_size, final.batch_size, final.lr, final.time_budget, Path(final.init_from).parent.name
((360, 480), 4, 0.0005, '900s', 'stage_1')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelwise.core.errors import ConfigError
from pixelwise.data.formats import open_dataset
from pixelwise.training import outputs
from pixelwise.training.config import TrainConfig, seconds_text
from pixelwise.training.distributed import is_main_process, log
from pixelwise.training.run_dir import check_runs_recipe, clear_unstarted, new_runs_dir, run_progress
from pixelwise.training.state import has_state
from pixelwise.training.trainer import TrainResult, train


def split_budget(config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first and the final stage's time budgets and epochs, from the recipe's and ``final_stage.share``.

    >>> split_budget(TrainConfig(epochs=40, time_budget="1h", final_stage={"img_size": 64}))
    ({'time_budget': '2700s', 'epochs': 30}, {'time_budget': '900s', 'epochs': 10})
    """
    assert config.final_stage is not None
    share = config.final_stage.share
    first: dict[str, Any] = {}
    final: dict[str, Any] = {}
    if config.time_budget is not None:
        total = config.time_budget_seconds or 0.0
        first["time_budget"], final["time_budget"] = seconds_text(total * (1 - share)), seconds_text(total * share)
    if config.epochs is not None:
        final["epochs"] = max(1, round(config.epochs * share))
        first["epochs"] = max(1, config.epochs - final["epochs"])
    return first, final


def stage_configs(config: TrainConfig) -> tuple[TrainConfig, TrainConfig]:
    """The recipes of the first and the final stage of the staged recipe ``config`` (its ``out`` is RUN)."""
    stage = config.final_stage
    if stage is None:
        raise ConfigError("a staged run needs final_stage in its recipe")
    run_dir = Path(str(config.out))
    first_dir = run_dir / outputs.STAGE_1
    recipe = {**config.model_dump(), "final_stage": None}
    first_budget, final_budget = split_budget(config)
    first = TrainConfig.model_validate({**recipe, "out": str(first_dir), **first_budget})
    # Classes the first stage inferred from the masks: the final stage reads them, so both predict the same.
    inferred = first_dir / outputs.INFERRED_CLASSES
    final = TrainConfig.model_validate({
        **recipe, **final_budget, "out": str(run_dir), "img_size": stage.img_size,
        "batch_size": stage.batch_size or config.batch_size, "lr": config.lr * stage.lr_scale,
        "init_from": str(first_dir / outputs.BEST_CHECKPOINT),
        "freeze_encoder_epochs": 0,  # the encoder was frozen (if at all) in the first stage; it now refines
        **({"classes": str(inferred)} if config.classes is None and inferred.is_file() else {}),
    })
    return first, final


def train_in_stages(config: TrainConfig, resume: bool = False, plan: list[dict[str, Any]] | None = None
                    ) -> TrainResult:
    """Train the first stage into RUN/stage_1, then the final stage into RUN (see the module docstring).

    ``resume``: continue RUN (``config.out``): a finished first stage is kept, an interrupted one continued.
    ``plan``: the planner's records, when the recipe was planned; both stages' folders keep them.
    """
    run_dir = staged_run_dir(config, resume, plan)
    config = config.model_copy(update={"out": str(run_dir)})
    first, _ = stage_configs(config)
    progress = run_progress(first)
    if progress == "finished":
        log(f"stage 1: finished earlier, kept ({first.out})")
    else:
        if progress == "new" and is_main_process():
            clear_unstarted(Path(str(first.out)))
        log(f"stage 1 of 2: {describe(first)} -> {first.out}")
        result = train(first, resume=progress == "unfinished", plan=plan, stage_of=config)
        if result.stop_reason == "interrupted":
            return result
        log(f"stage 1: best val mIoU {result.best_metrics.get('miou', float('nan')):.4f} "
            f"({result.stop_reason}, {result.epochs_done} epochs)")
    _, final = stage_configs(config)  # after stage 1, which may have written the classes the final stage reads
    log(f"final stage: {describe(final)}, peak lr {final.lr:g}, from {final.init_from} -> {run_dir}")
    return train(final, resume=has_state(run_dir / "last"), plan=plan, stage_of=config)


def describe(stage: TrainConfig) -> str:
    """``"240x320 in batches of 8, 2700s"``: what a stage trains, for its log line."""
    size = "the images' own size" if stage.img_size is None else f"{stage.img_size[0]}x{stage.img_size[1]}"
    limits = [stage.time_budget] if stage.time_budget else []
    limits += [f"{stage.epochs} epochs"] if stage.epochs else []
    return f"{size} in batches of {stage.batch_size}, {' or '.join(limits)}"


def staged_run_dir(config: TrainConfig, resume: bool, plan: list[dict[str, Any]] | None) -> Path:
    """RUN: with ``resume`` the staged run to continue; else a new folder, holding the whole recipe.

    The data is opened first, so that a recipe that cannot train leaves no folder behind.
    """
    if resume:
        if config.out is None or not (Path(config.out) / "config.yaml").is_file():
            raise ConfigError(f"{config.out}: no staged run to resume here (no config.yaml); train without "
                              "--resume to start one")
        return Path(config.out)
    check_runs_recipe(config, "staged run")
    open_dataset(str(config.data), config.format, config.classes)  # a readable dataset, before any folder is made
    return new_runs_dir(config, plan)
