"""The full training state in ``RUN_DIR/last/``: enough to continue a run exactly.

``model.safetensors`` holds the weights; ``state.pt`` holds the optimizer state, counters, history
and RNG states, saved with ``torch.save`` and read back with ``weights_only=True`` (tensors, numbers,
strings, lists and dicts only: loading never runs code); ``ema.safetensors`` the averaged weights when
the recipe sets ``ema``.

``last/`` is written as one unit (:func:`pixelwise.core.files.replaced_folder`): a new folder is filled
and synced, then swapped in. A SIGKILL at any moment leaves the previous ``last/`` or the new one, never
a model of one step beside the optimizer state of another (docs/reliability.md).

>>> TrainState().epoch
0
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file
from safetensors.torch import save as tensors_to_bytes

from pixelwise.core.errors import CheckpointError
from pixelwise.core.faults import fault_point
from pixelwise.core.files import current_folder, recover_folder, replaced_folder
from pixelwise.training.ema import WeightAverage


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    step_in_epoch: int = 0  # steps done in the running epoch (non-zero after an interruption)
    loss_sum: float = 0.0  # running train loss of the current epoch
    loss_count: int = 0
    elapsed: float = 0.0  # training seconds so far (the time budget counts across resumes)
    best_score: float = -1.0  # the best val score so far: mIoU, or score_class's IoU
    best_epoch: int = 0
    stale: int = 0  # epochs since the best, for early stopping
    history: list[dict[str, Any]] = field(default_factory=list)
    bad_batches: int = 0  # batches skipped for a NaN/inf loss or gradient (see training/batch_guard.py)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    random.setstate((3, tuple(rng["python"]), rng["python_pos"]))
    np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))


def save_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainState,
               ema: WeightAverage | None = None) -> None:
    """Replace ``folder`` (a run's ``last/``) as one unit: a crash mid-save leaves the previous state whole."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"state": asdict(state), "optimizer": optimizer.state_dict(), "rng": _rng_state()}
    with replaced_folder(folder) as work:
        # Serialised in memory, written by Python: a full disk is then an OSError naming the file (the
        # writers of safetensors and torch.save raise their own types with the path lost).
        (work / "model.safetensors").write_bytes(tensors_to_bytes(weights))
        fault_point("in-save")  # where a test kills us: half a state written
        if ema is not None:
            ema.save(work / "ema.safetensors")
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        (work / "state.pt").write_bytes(buffer.getvalue())


def has_state(folder: Path) -> bool:
    """Whether ``folder`` (a run's ``last/``) holds a saved state (also one a crash left mid-swap)."""
    return (current_folder(folder) / "state.pt").is_file()


def load_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               ema: WeightAverage | None = None) -> TrainState:
    recover_folder(folder)  # this process is about to write it: finish a swap a crash interrupted
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        if ema is not None:
            ema.load(folder / "ema.safetensors")
        payload = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(payload["optimizer"])
    except Exception as e:  # truncated files and foreign states raise many types
        raise CheckpointError(f"{folder}: training state cannot be loaded ({e.__class__.__name__}: "
                              f"{str(e).splitlines()[0][:150]}); start a new run without --resume") from None
    _set_rng_state(payload["rng"])
    return _state_from(payload["state"])


def _state_from(fields: dict[str, Any]) -> TrainState:
    fields = dict(fields)
    if "best_miou" in fields:  # written before score_class existed, when the score was always the mIoU
        fields["best_score"] = fields.pop("best_miou")
    return TrainState(**fields)


def read_state(folder: Path) -> TrainState:
    """The counters and history saved in ``folder`` (a run's ``last/``), without a model to load them into:
    enough to tell where a run stands (see :func:`pixelwise.training.run_dir.run_progress`)."""
    try:
        payload = torch.load(current_folder(folder) / "state.pt", map_location="cpu", weights_only=True)
        return _state_from(payload["state"])
    except Exception as e:  # truncated files and foreign states raise many types
        raise CheckpointError(f"{folder}: training state cannot be read ({e.__class__.__name__}: "
                              f"{str(e).splitlines()[0][:150]})") from None
