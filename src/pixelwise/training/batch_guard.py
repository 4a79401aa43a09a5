"""Numerical faults: a batch whose loss or gradient is NaN/inf never changes the weights.

:class:`BatchGuard` is asked twice per step: before the backward pass (is the loss finite?) and before
the optimizer step (are the gradients finite?). A bad batch is skipped, and the skip is logged with the
batch's file names; after ``max_bad_batches`` skips in one run it stops with a
:class:`~pixelwise.core.errors.DataError` naming the files and what to try. The weights, the optimizer
state and so every checkpoint only ever hold finite values from finite steps (docs/reliability.md).

>>> import torch
>>> guard = BatchGuard(max_bad=1, log=print)
>>> guard.finite(torch.tensor(0.5)), guard.finite(torch.tensor(float("nan")))
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from accelerate import Accelerator

from pixelwise.core.errors import DataError


class BatchGuard:
    """Counts and logs skipped batches; raises once there are more than ``max_bad`` in the run."""

    def __init__(self, max_bad: int, log: Callable[[str], None], skipped: int = 0) -> None:
        self.max_bad = max_bad
        self.log = log
        self.skipped = skipped  # over the whole run: it is saved in the training state

    @staticmethod
    def finite(value: torch.Tensor | float) -> bool:
        return bool(torch.isfinite(torch.as_tensor(value)).all())

    @staticmethod
    def finite_grads(parameters: Iterable[torch.nn.Parameter]) -> bool:
        """Whether every gradient is finite (one reduction per tensor, one sync at the end)."""
        flags = [torch.isfinite(p.grad).all() for p in parameters if p.grad is not None]
        return bool(torch.stack(flags).all()) if flags else True

    @staticmethod
    def buffers(model: torch.nn.Module) -> list[torch.Tensor]:
        """A copy of ``model``'s buffers, taken before the forward: batch norm updates its running statistics
        in the forward pass, before the loss can say the batch was bad (then :meth:`restore` puts them back)."""
        return [b.detach().clone() for b in model.buffers()]

    @staticmethod
    def restore(model: torch.nn.Module, saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for buffer, value in zip(model.buffers(), saved, strict=True):
                buffer.copy_(value)

    def loss_problem(self, loss: torch.Tensor, accelerator: Accelerator) -> str | None:
        """What is wrong with ``loss`` (NaN/inf), agreed by all processes (one skipping alone would hang DDP)."""
        bad = torch.tensor(0.0 if self.finite(loss) else 1.0, device=accelerator.device)
        if accelerator.num_processes > 1:
            bad = accelerator.reduce(bad, "sum")
        return f"the loss is {float(loss.detach())}" if float(bad) > 0 else None

    def skip(self, what: str, step: int, files: list[str]) -> None:
        """Record a skipped batch (``what``: "loss is nan", ...); raise when the run has had too many."""
        self.skipped += 1
        names = ", ".join(files) if files else "(file names unknown)"
        if self.skipped > self.max_bad:
            raise DataError(f"training stopped at step {step}: {what} ({self.skipped} such batches, more than "
                            f"max_bad_batches {self.max_bad}); that batch held {names}. Check those images and "
                            "masks, lower --lr, or use --precision fp32")
        self.log(f"warning: skipped the batch of step {step} ({what}; the weights are unchanged): {names} "
                 f"[{self.skipped}/{self.max_bad} skips allowed]")
