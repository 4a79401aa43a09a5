"""Checkpoint ensembles: several checkpoints of one task whose logits are averaged.

The members must predict the same classes (same names, same ignore index) from images normalised the
same way; they may differ in architecture and in the size they were trained at. Each member sees the
input as it is given (the predictor resizes it to the first member's training size) and returns logits
at that size, so averaging them needs nothing else. Averaging logits rather than votes lets a confident
member outweigh an unsure one, and the result is again logits: tiling, TTA, evaluation and export work
with an ensemble exactly as with one model.

>>> import tempfile, torch
>>> from pathlib import Path
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint
>>> from pixelwise.models.registry import create_model
>>> folder = Path(tempfile.mkdtemp())
>>> for name, depth in [("a", 2), ("b", 3)]:  # two architectures, one task
...     member = create_model("unet", num_classes=2, base_filters=4, depth=depth)
...     save_checkpoint(folder / f"{name}.safetensors", member, CheckpointMeta.for_model(member, get_preset("binary")))
>>> model, meta = load_ensemble([folder / "a.safetensors", folder / "b.safetensors"])
>>> len(model.members), model(torch.zeros(1, 3, 30, 45)).shape, [Path(p).name for p in meta.extra["ensemble"]]
(2, torch.Size([1, 2, 30, 45]), ['a.safetensors', 'b.safetensors'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from pixelwise.core.errors import ConfigError
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint, read_meta

# What a model source can be: one checkpoint, or several to ensemble.
Checkpoints = str | Path | Sequence[str | Path]


class EnsembleModel(nn.Module):
    """Several segmentation models as one: ``forward(x)`` is the mean of the members' logits ``(N, C, H, W)``."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A running sum rather than torch.stack(...).mean(0): only the sum and one member's logits are held at
        # a time, so memory does not grow with the number of members. float(): under bf16/fp16 autocast the
        # members' logits are half precision, and a sum of several should not round at every step.
        total = self.members[0](x).float()
        for member in self.members[1:]:
            total = total + member(x).float()
        return total / len(self.members)


def checkpoint_paths(source: Checkpoints) -> list[Path]:
    """One checkpoint or a list of them, as a list of paths.

    >>> checkpoint_paths("best.safetensors") == [Path("best.safetensors")], len(checkpoint_paths(["a", "b"]))
    (True, 2)
    """
    if isinstance(source, str | Path):
        return [Path(source)]
    return [Path(p) for p in source]


def load_checkpoints(source: Checkpoints, device: str = "cpu") -> tuple[nn.Module, CheckpointMeta]:
    """``(model, meta)`` of one checkpoint (a list of one included), or of the ensemble of several."""
    paths = checkpoint_paths(source)
    if len(paths) == 1:
        return load_checkpoint(paths[0], device)
    return load_ensemble(paths, device)


def load_ensemble(paths: Sequence[str | Path], device: str = "cpu") -> tuple[EnsembleModel, CheckpointMeta]:
    """The ensemble of the checkpoints at ``paths`` and its metadata, the first's with the members'
    paths in ``extra["ensemble"]`` (its training size is the first's, so the predictor resizes to that).

    Checkpoints that do not share classes, ignore index and normalisation are refused with one line
    naming two of them; nothing is loaded until every header has been checked.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("an ensemble needs at least one checkpoint")
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:  # most likely a slip; it would silently weigh that member twice
            raise ConfigError(f"{path}: named twice; an ensemble averages different checkpoints")
        seen.add(path.resolve())
    metas = [read_meta(path) for path in paths]
    for path, meta in zip(paths[1:], metas[1:], strict=True):
        check_same_task(paths[0], metas[0], path, meta)
    model = EnsembleModel([load_checkpoint(path, device)[0] for path in paths])
    meta = dataclasses.replace(metas[0], extra={**metas[0].extra, "ensemble": [str(p) for p in paths]})
    model.meta = meta
    return model.eval(), meta


def check_same_task(first: Path, first_meta: CheckpointMeta, other: Path, other_meta: CheckpointMeta) -> None:
    """Refuse, with one line naming both files, two checkpoints whose logits cannot be averaged.

    Colours and mask values may differ: they say how classes are drawn and stored, not what a logit means.
    """
    checks = [
        ("classes", first_meta.classes.names, other_meta.classes.names),
        ("ignore index", first_meta.classes.ignore_index, other_meta.classes.ignore_index),
        ("normalisation mean", rounded(first_meta.mean), rounded(other_meta.mean)),
        ("normalisation std", rounded(first_meta.std), rounded(other_meta.std)),
    ]
    for what, a, b in checks:
        if a != b:
            shown = class_difference(b, a) if what == "classes" else f"{b} vs {a}"
            raise ConfigError(f"{other} and {first} disagree on the {what} ({shown}); an ensemble needs "
                              "checkpoints of one task (same classes, ignore index and normalisation)")


def class_difference(names: Sequence[str], other_names: Sequence[str]) -> str:
    """How two class lists differ, short enough for one line.

    >>> class_difference(["sky", "road"], ["sky", "road", "car"])
    '2 classes vs 3'
    >>> class_difference(["sky", "road"], ["sky", "car"])
    "class 1 is 'road' vs 'car'"
    """
    if len(names) != len(other_names):
        return f"{len(names)} classes vs {len(other_names)}"
    index = next(i for i, (a, b) in enumerate(zip(names, other_names, strict=True)) if a != b)
    return f"class {index} is '{names[index]}' vs '{other_names[index]}'"


def rounded(values: Sequence[float]) -> tuple[float, ...]:
    """Values to 6 decimals: a mean written as 0.485 in one recipe and 0.4850000001 in another is the same."""
    return tuple(round(float(v), 6) for v in values)
