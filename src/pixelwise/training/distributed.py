"""What the processes of a data-parallel run must agree on, and how they come to agree.

In a single process (the usual case) every helper here is a plain local computation.

>>> clock = SharedClock(elapsed=5.0)
>>> clock() >= 5.0
True
>>> mean_across_processes(6.0, 3, torch.device("cpu"))
2.0
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn as nn
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, broadcast
from tqdm.auto import tqdm

from pixelwise.core.device import sum_across_processes


def is_main_process() -> bool:
    """Whether this process writes and prints. Read from the launcher's environment (torchrun and
    ``accelerate launch`` set RANK): between the runs of a cross-validation or a staged run no trainer,
    hence no Accelerator, exists to ask."""
    return os.environ.get("RANK", "0") == "0"


def log(message: str) -> None:
    """Print ``message`` in the first process only, as the trainer logs: between progress bars, not through them."""
    if is_main_process():
        tqdm.write(message)


def make_accelerator(cpu: bool, mixed_precision: str, handlers: list) -> Accelerator:
    """An ``Accelerator``, also when this process already made one with another precision or device.

    Accelerate keeps one state per process and refuses a second ``Accelerator`` that asks for another
    mixed precision: a notebook or a test suite that trains twice (fp32, then ``auto`` = bf16) would
    stop with "AcceleratorState has already been initialized". Outside a launcher there is no process
    group to keep, so the state is started afresh; under one, the launcher's state stands.
    """
    try:
        return Accelerator(cpu=cpu, mixed_precision=mixed_precision, kwargs_handlers=handlers)
    except ValueError as err:
        if "already been initialized" not in str(err) or PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(cpu=cpu, mixed_precision=mixed_precision, kwargs_handlers=handlers)


def accelerator_for(device: torch.device, precision: str, freeze_encoder: bool) -> Accelerator:
    """The run's ``Accelerator`` for a resolved device and precision ("bf16", "fp16" or "fp32").

    Under torchrun / accelerate launch, Accelerate reads the launcher's environment (LOCAL_RANK,
    WORLD_SIZE, ...): NCCL on GPUs, gloo when cpu=True.
    """
    mixed = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[precision]
    # A frozen encoder gets no gradients, and DDP fails on parameters without one unless told to look
    # for them, which costs a graph walk per step, so only runs that freeze pay it.
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if freeze_encoder else []
    return make_accelerator(device.type == "cpu", mixed, handlers)


class SharedClock:
    """Training seconds so far, counted from ``elapsed`` seconds (those of earlier sessions of a run).

    With a time budget they set the lr and the stop, which must be the same in every process (different
    lrs would drift the replicas apart; a process that stops alone would leave the others waiting in a
    collective), so rank 0's clock is used by all. Calling the clock is then a collective: every process
    must call it at the same points.
    """

    def __init__(self, elapsed: float = 0.0, budget: float | None = None, processes: int = 1,
                 device: torch.device | None = None) -> None:
        self.started = time.monotonic() - elapsed
        self.budget, self.processes, self.device = budget, processes, device

    def local(self) -> float:
        """This process's own seconds (no collective): for the record, not for decisions."""
        return time.monotonic() - self.started

    def __call__(self) -> float:
        seconds = self.local()
        if self.budget and self.processes > 1:
            seconds = float(broadcast(torch.tensor([seconds], dtype=torch.float64, device=self.device))[0])
        return seconds


def sync_buffers(model: nn.Module, processes: int) -> None:
    """Give every process rank 0's buffers (batch-norm statistics) before validation.

    DDP copies them from rank 0 at the start of each training forward, but each process then
    updates its own from its own batch; after the last step they differ, and the processes would
    score slightly different models instead of the one rank 0 saves.
    """
    if processes > 1:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)


def mean_across_processes(total: float, count: int, device: torch.device) -> float:
    """``total / count`` with both summed over every process: the epoch's train loss over all
    processes' shares, not rank 0's alone."""
    totals = sum_across_processes(torch.tensor([total, count], dtype=torch.float64), device)
    return float(totals[0] / max(float(totals[1]), 1.0))
