"""Plan a dataset: its fingerprint, this machine's measured training speeds, and the planner's rules.

``pixelwise plan DIR`` prints what this returns and writes it as a recipe; ``pixelwise train --data DIR``
without a recipe or an epoch count trains with it (see the README's "Automatic recipe").

>>> import tempfile
>>> from pixelwise.data.synthetic import write_dataset
>>> root = write_dataset(tempfile.mkdtemp(), n_train=8, n_val=2, height=48, width=64)
>>> facts = MachineFacts(speeds={"unet": 0.5}, pretrained=[], ram_gib=8.0)
>>> plan = plan_dataset(root, budget_s=60, machine=facts)
>>> plan.value("encoder"), plan.value("data") == str(root)
(None, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pixelwise.core.errors import ConfigError
from pixelwise.core.machine import ram_gib
from pixelwise.data.fingerprint import fingerprint_dataset
from pixelwise.data.formats import ClassesArg
from pixelwise.models.pretrained import cached_weights_file, packaged_weights_file
from pixelwise.training.config import TrainConfig, load_config, parse_duration
from pixelwise.training.plan import ENCODERS, GIVEN, SCRATCH, MachineFacts, Plan, make_plan
from pixelwise.training.speed import cached_training_speed


def offline_encoders() -> list[str]:
    """The planner's encoders whose ImageNet weights are on this machine (a pip package or a cache)."""
    return [name for name in ENCODERS if packaged_weights_file(name) or cached_weights_file(name)]


def machine_facts(given: dict[str, Any] | None = None) -> MachineFacts:
    """Training speeds of the scratch U-Net and of each offline encoder's U-Net, or of the model in
    ``given`` when the user chose one (measured once per machine, see :mod:`pixelwise.training.speed`)."""
    given = given or {}
    precision, device = given.get("precision", "auto"), given.get("device", "auto")
    pretrained = offline_encoders()
    if "model" in given or "encoder" in given:
        options = {**given.get("model_kwargs", {}), **({"encoder": given["encoder"]} if given.get("encoder") else {})}
        speeds = {GIVEN: cached_training_speed(given.get("model", "unet"), options, precision, device)}
    else:
        speeds = {name: cached_training_speed("unet", {} if name == SCRATCH else {"encoder": name}, precision, device)
                  for name in [SCRATCH, *pretrained]}
    return MachineFacts(speeds=speeds, pretrained=pretrained, ram_gib=ram_gib() or 8.0,
                        device="cuda" if device == "cuda" else "cpu")


def plan_dataset(data: str | Path, format: str = "auto", classes: ClassesArg = None, budget_s: float = 1800,
                 given: dict[str, Any] | None = None, machine: MachineFacts | None = None) -> Plan:
    """The plan for the dataset at ``data``: values in ``given`` (flags) stand, the rules fill the rest."""
    fingerprint = fingerprint_dataset(data, format, classes)
    given = {k: v for k, v in (given or {}).items() if v is not None}
    if machine is None:
        machine = machine_facts(given)
    plan = make_plan(fingerprint, machine, budget_s, given)
    for key, value in (("data", str(data)), ("format", format), ("classes", classes)):
        if value is not None and key not in plan.choices:
            plan.set(key, value, "the dataset planned for")
    return plan


DEFAULT_BUDGET = "30m"  # a planned run without --time-budget: long enough for a pretrained encoder to converge


def planned_config(given: dict[str, Any]) -> tuple[TrainConfig, Plan]:
    """The recipe for ``given`` (TrainConfig fields from flags; ``data`` required): the plan fills every
    value not given. Returns the validated recipe and the plan (its records go to RUN/plan.yaml)."""
    if not given.get("data"):
        raise ConfigError("planning needs --data DIR (the dataset to plan for)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each process would measure its own speeds and could plan another size: the replicas must agree.
        raise ConfigError("a distributed run cannot plan in every process; plan first with `pixelwise plan DIR "
                          "--out plan.yaml`, then launch `pixelwise train --config plan.yaml`")
    given = {"time_budget": DEFAULT_BUDGET, **given}
    typed = load_config(None, **given)  # "32x48" -> (32, 48): the rules read values, not flag strings
    given = {key: getattr(typed, key) for key in given}
    budget = parse_duration(given["time_budget"])
    plan = plan_dataset(given["data"], given.get("format", "auto"), given.get("classes"), budget, given)
    return load_config(None, **plan.recipe()), plan
