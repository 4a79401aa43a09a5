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

import time
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from pixelwise.core.errors import ConfigError
from pixelwise.training.state import has_state


def new_run_dir(out: str | None, resume: bool) -> Path:
    """The run directory; never one that holds an earlier run unless resuming it."""
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
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir}: folder already holds files (an earlier run?); choose another --out, "
                          "or pass --resume to continue that run")
    return run_dir


def agreed_run_dir(accelerator: Accelerator, out: str | None, resume: bool) -> Path:
    """The run folder, chosen by rank 0 and told to every process, its refusal included.

    Each process deciding alone would race: a slow one would find the folder rank 0 just filled
    and refuse it, and a default name holds the time, which two processes can read a second apart.
    """
    answer: list[str | None] = [None, None]  # the folder, or the ConfigError message
    if accelerator.is_main_process:
        try:
            answer[0] = str(new_run_dir(out, resume))
        except ConfigError as e:
            answer[1] = str(e)
    if accelerator.num_processes > 1:
        broadcast_object_list(answer, from_process=0)
    if answer[1] is not None:
        raise ConfigError(answer[1])
    return Path(str(answer[0]))
