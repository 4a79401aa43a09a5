"""Learning-rate schedules as a function of training progress in [0, 1].

Progress is the fraction of steps done, or of the time budget spent when training runs for a time
budget, so the same schedule fits ``--epochs`` and ``--time-budget`` runs alike.

>>> lr_factor("poly", 0.0, warmup=0.0), round(lr_factor("cosine", 0.5, warmup=0.0), 3)
(1.0, 0.5)
>>> training_progress(step=30, total_steps=100, seconds=600.0, budget=1200.0)
0.5
"""

from __future__ import annotations

import math


def lr_factor(schedule: str, progress: float, warmup: float) -> float:
    """Multiplier of the base learning rate at ``progress``: linear warm-up, then the decay."""
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "onecycle":
        warmup = max(warmup, 0.25)  # one-cycle spends a quarter of the run climbing to the peak
    if warmup > 0 and progress < warmup:
        start = 0.04 if schedule == "onecycle" else 0.01
        return start + (1 - start) * progress / warmup
    p = (progress - warmup) / (1 - warmup) if warmup < 1 else 1.0
    if schedule == "constant":
        return 1.0
    if schedule == "poly":
        return (1 - p) ** 0.9
    if schedule in ("cosine", "onecycle"):
        floor = 1e-4 if schedule == "onecycle" else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))
    raise ValueError(f"unknown schedule '{schedule}'")


def training_progress(step: int, total_steps: int | None, seconds: float, budget: float | None) -> float:
    """How far training is: the fraction of ``total_steps`` done or of the time ``budget`` spent, whichever
    is further (a run may have both: ``--epochs`` and ``--time-budget``, and stops at the first reached)."""
    fractions = [step / total_steps] if total_steps else []
    if budget:
        fractions.append(seconds / budget)
    return max(fractions)
