"""The run folder: a new one for every run, the same one for every process of a run.

>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> new_run_dir(str(out), resume=False) == out
True
>>> out.mkdir()
>>> _ = (out / "best.safetensors").write_bytes(b"an earlier run")
>>> try:
...     new_run_dir(str(out), resume=False)
... except ConfigError as e:
...     print("refused:", "already holds files" in str(e))
refused: True
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from pixelwise.core.errors import ConfigError
from pixelwise.core.files import recover_folder, remove_quietly
from pixelwise.training import outputs
from pixelwise.training.config import TrainConfig
from pixelwise.training.distributed import is_main_process
from pixelwise.training.state import TrainState, has_state, read_state

# What a run's folder holds before it saved its first step: a fold or stage stopped then starts afresh.
RECIPE_FILES = {"config.yaml", outputs.INFERRED_CLASSES, "plan.yaml"}


def new_run_dir(out: str | None, resume: bool, owned: frozenset[str] = frozenset()) -> Path:
    """The run directory; never one that holds an earlier run unless resuming it. ``owned``: names the folder
    may hold already (the final stage of a staged run trains in the folder of the whole run, beside its
    recipe and first stage)."""
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
        base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        run_dir, n = base, 1
        while run_dir.exists():
            run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
        return run_dir
    run_dir = Path(out)
    if resume:
        # A run killed before its first save has its recipe but no state: --resume starts it over (and says so).
        if not has_state(run_dir / "last") and not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir}: no saved training state (last/state.pt) to resume; "
                              "train without --resume to start a new run")
    elif run_dir.exists() and any(p.name not in owned for p in run_dir.iterdir()):
        raise ConfigError(f"{run_dir}: folder already holds files (an earlier run?); choose another --out, "
                          "or pass --resume to continue that run")
    return run_dir


def agreed_run_dir(accelerator: Accelerator, out: str | None, resume: bool,
                   owned: frozenset[str] = frozenset()) -> Path:
    """The run folder, chosen by rank 0 and told to every process, its refusal included.

    Each process deciding alone would race: a slow one would find the folder rank 0 just filled
    and refuse it, and a default name holds the time, which two processes can read a second apart.
    """
    answer: list[str | None] = [None, None]  # the folder, or the ConfigError message
    if accelerator.is_main_process:
        try:
            answer[0] = str(new_run_dir(out, resume, owned))
        except ConfigError as e:
            answer[1] = str(e)
    if accelerator.num_processes > 1:
        broadcast_object_list(answer, from_process=0)
    if answer[1] is not None:
        raise ConfigError(answer[1])
    return Path(str(answer[0]))


def run_progress(run: TrainConfig) -> str:
    """Where the run in ``run.out`` stands: ``"new"`` (no step saved yet), ``"unfinished"`` (``--resume``
    continues it) or ``"finished"`` (it has its best checkpoint, and its saved state has nothing left to train)."""
    folder = Path(str(run.out))
    if not has_state(folder / "last"):
        return "new"
    done = (folder / outputs.BEST_CHECKPOINT).is_file() and training_done(read_state(folder / "last"), run)
    return "finished" if done else "unfinished"


def training_done(state: TrainState, config: TrainConfig) -> bool:
    """Whether a run whose saved state is ``state`` stopped for good, by the trainer's own stop rules.

    The state does not record why a run stopped; a state saved mid-epoch is an interruption, and one saved
    at the end of an epoch is final when the epochs, the time budget or the patience had run out.
    """
    if state.step_in_epoch:
        return False
    budget = config.time_budget_seconds
    return ((config.epochs is not None and state.epoch >= config.epochs)
            or (budget is not None and state.elapsed >= budget)
            or (config.patience is not None and state.stale >= config.patience))


def clear_unstarted(folder: Path) -> None:
    """Remove the recipe files a run (a fold, a stage) wrote before it saved a step, so that it can start
    again; anything else in the folder is not the trainer's to delete, and is refused."""
    if not folder.is_dir():
        return
    recover_folder(folder / "last")  # a save killed before it finished leaves a hidden partial folder: not a run
    names = {p.name for p in folder.iterdir()}
    if names - RECIPE_FILES:
        raise ConfigError(f"{folder}: holds {', '.join(sorted(names - RECIPE_FILES))} but no training state "
                          "to resume; move it away to train this run again")
    for name in names:
        remove_quietly(folder / name)


def check_runs_recipe(config: TrainConfig, what: str) -> None:
    """Refuse a run made of runs (``what``: a cross-validation, a staged run) that cannot start: no data, or
    several processes with no --out to agree on."""
    if config.data is None:
        raise ConfigError("no --data given; point it at a dataset folder (or run `pixelwise demo`)")
    if config.out is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each process would name its own folder after the time it reads, which may differ by a second.
        raise ConfigError(f"a distributed {what} needs --out RUN, the folder every process writes to")


def new_runs_dir(config: TrainConfig, plan: list[dict[str, Any]] | None) -> Path:
    """RUN of a new run made of runs (a cross-validation's folds, a staged run's stages), holding its whole
    recipe (and the planner's records), which ``--resume`` reads back. Call it once the data is checked, so
    that a recipe that cannot train leaves no folder behind."""
    if not is_main_process():
        return Path(str(config.out))  # the first process checks and writes it; the others would race it
    run_dir = new_run_dir(config.out, resume=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_config(run_dir, config.model_copy(update={"out": str(run_dir)}), None, plan)
    return run_dir
