"""When the trainer saves ``last/`` inside an epoch: the recipe's ``save_every``.

A state is always saved at the end of each epoch; ``save_every`` adds saves inside long epochs, so a
SIGKILL (OOM killer, a laptop's battery, a shared machine's reboot) loses at most one interval. It is a
duration (``"10m"``, the default; ``"90s"``) or a step count (``"500 steps"``); ``"epoch"`` saves only
at the ends of epochs.

>>> parse_save_every("500 steps"), parse_save_every("10m"), parse_save_every("epoch")
((None, 500), (600.0, None), (None, None))
>>> schedule = SaveSchedule("2 steps")
>>> [schedule.due(step) for step in (1, 2, 3, 4)]
[False, True, False, True]
"""

from __future__ import annotations

import time

from pixelwise.training.config import parse_save_every


class SaveSchedule:
    """Says after which optimizer steps a state is due; :meth:`saved` restarts the clock (epoch ends too).

    Time is this process's wall clock since the last save, so a resumed run counts from its start.
    """

    def __init__(self, save_every: str) -> None:
        self.seconds, self.steps = parse_save_every(save_every)
        self.last_save = time.monotonic()

    def due(self, step: int) -> bool:
        """Whether to save after optimizer step ``step`` (counted over the whole run, so resumes agree)."""
        if self.steps is not None:
            return step % self.steps == 0
        return self.seconds is not None and time.monotonic() - self.last_save >= self.seconds

    def saved(self) -> None:
        self.last_save = time.monotonic()
