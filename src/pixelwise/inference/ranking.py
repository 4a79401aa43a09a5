"""What to label next: images ranked by how unsure the model is about them (uncertainty sampling).

Active learning labels first the images a model is least sure about: they teach it the most per image
labelled. Each image gets a score, the mean over its pixels of a per-pixel uncertainty map in 0..1, computed
from the class probabilities the :class:`~pixelwise.inference.predictor.Predictor` returns
(``return_probs=True``): the same backends, tiling and resizing as ``pixelwise predict``. The scores are a
registry (:data:`SCORES`); each takes the probabilities of one or more checkpoints, ``(M, C, H, W)``:

* ``entropy``: the entropy of the (mean) class probabilities over log(C), the map ``predict
  --save-uncertainty`` writes; the classic choice.
* ``margin``: 1 - (p1 - p2), the gap between the two most likely classes (margin sampling): 1 where two
  classes tie, 0 where one holds all the probability.
* ``disagreement``: how much several checkpoints of one task disagree (query by committee): the mean
  Kullback-Leibler divergence of each checkpoint's probabilities from their mean, over log(C).

Why KL to the mean for ``disagreement``, and not the fraction of models that disagree with the majority vote:
it is the committee measure of McCallum & Nigam (1998) and equals the mutual information between the label
and the model (BALD, the standard deep-ensemble choice), so ``entropy`` of the mean = ``disagreement`` +
the members' mean entropy: it separates "the models disagree" from "every model is unsure the same way"
(ambiguous pixels that more labels will not fix). Votes throw the probabilities away and, with the two
checkpoints people usually have, take only the values 0 and 1/2 (a two-model majority is a tie).

With several checkpoints, ``entropy`` and ``margin`` are taken on the mean of their probabilities (the
committee's prediction); ``pixelwise predict`` averages logits instead, so its maps of an ensemble differ a
little. With one checkpoint the ``entropy`` map is the very one ``predict --save-uncertainty`` writes.

>>> probs = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]]]])   # one model, 2 classes, a 1x2 image
>>> [round(float(SCORES.get(name)(probs).mean()), 3) for name in ("entropy", "margin")]
[0.5, 0.5]
>>> two = torch.tensor([[[[1.0]], [[0.0]]], [[[0.0]], [[1.0]]]])   # two models, sure and opposite
>>> float(SCORES.get("disagreement")(two)), float(SCORES.get("entropy")(two))
(1.0, 1.0)
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelwise.core.errors import ConfigError
from pixelwise.core.files import write_bytes
from pixelwise.core.registry import Registry
from pixelwise.core.uncertainty import normalized_entropy, uncertainty_png_values
from pixelwise.data.io import encode_png
from pixelwise.inference.predictor import Predictor, expand_inputs, output_paths
from pixelwise.models.ensemble import Checkpoints, checkpoint_paths, class_difference

# A score maps the probabilities of M checkpoints, (M, C, H, W), to an (H, W) uncertainty map in 0..1.
ScoreFn = Callable[[torch.Tensor], torch.Tensor]
SCORES: Registry[ScoreFn] = Registry("rank score", hint="see `pixelwise rank --help`")
# How many checkpoints a score needs (a score not listed needs one).
MIN_CHECKPOINTS: dict[str, int] = {}


def register_score(name: str, min_checkpoints: int = 1) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator: add a score to :data:`SCORES`; ``min_checkpoints``: how many models it compares."""

    def add(fn: ScoreFn) -> ScoreFn:
        MIN_CHECKPOINTS[name] = min_checkpoints
        return SCORES.register(name)(fn)

    return add


@register_score("entropy")
def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the class probabilities over log(C): 1 where every class is equally likely."""
    return normalized_entropy(probs.mean(0))


@register_score("margin")
def margin(probs: torch.Tensor) -> torch.Tensor:
    """1 - (p1 - p2), the gap between the two likeliest classes: 1 where they tie (margin sampling)."""
    top2 = probs.mean(0).topk(2, dim=0).values
    return (1.0 - (top2[0] - top2[1])).clamp_(0.0, 1.0)


@register_score("disagreement", min_checkpoints=2)
def disagreement(probs: torch.Tensor) -> torch.Tensor:
    """Mean KL divergence of each checkpoint's probabilities from their mean, over log(C) (query by committee)."""
    if probs.shape[0] < 2:
        raise ConfigError("disagreement compares checkpoints; give at least two of one task")
    # mean_m KL(p_m || mean) = H(mean) - mean_m H(p_m): the entropy form needs no log of a zero probability.
    members = torch.stack([normalized_entropy(p) for p in probs]).mean(0)
    return (normalized_entropy(probs.mean(0)) - members).clamp_(0.0, 1.0)


def check_score(by: str, checkpoints: int) -> None:
    """Refuse an unknown score, or one that needs more checkpoints than given, before any work."""
    SCORES.get(by)  # unknown: one line listing the scores
    if checkpoints < MIN_CHECKPOINTS.get(by, 1):
        raise ConfigError(f"--by {by} compares checkpoints: give at least {MIN_CHECKPOINTS[by]} of one task "
                          f"(same classes, e.g. trained with different seeds), got {checkpoints}; or rank --by "
                          "entropy")


@dataclasses.dataclass
class RankedImage:
    """One image's scores: every score its checkpoints allow, each the mean of that score's map."""

    image: Path
    scores: dict[str, float]


def image_scores(probs: torch.Tensor) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Every score ``(M, C, H, W)`` probabilities allow: the image's mean of each, and each one's map."""
    maps = {name: SCORES.get(name)(probs) for name in SCORES if probs.shape[0] >= MIN_CHECKPOINTS.get(name, 1)}
    return {name: float(m.double().mean()) for name, m in maps.items()}, maps


def open_predictors(checkpoints: Checkpoints, num_images: int, **options: Any) -> list[Predictor]:
    """One :class:`Predictor` per checkpoint (each model's own probabilities, not an ensemble's), all of
    one task: a checkpoint of other classes is one error line naming it and the first."""
    paths = checkpoint_paths(checkpoints)
    if len({p.resolve() for p in paths}) < len(paths):
        raise ConfigError(f"{' '.join(map(str, paths))}: a checkpoint is named twice; it would agree with itself")
    predictors = [Predictor(path, num_images=num_images, **options) for path in paths]
    first = predictors[0].classes.names
    for path, predictor in zip(paths[1:], predictors[1:], strict=True):
        if predictor.classes.names != first:
            raise ConfigError(f"{path} and {paths[0]} predict different classes "
                              f"({class_difference(predictor.classes.names, first)}); rank compares checkpoints "
                              "of one task")
    return predictors


def rank_images(checkpoints: Checkpoints, inputs: Sequence[str | Path], by: str = "entropy",
                maps_dir: str | Path | None = None, batch_size: int = 4, workers: int | None = None,
                progress: bool = False, log: Callable[[str], None] | None = None,
                **options: Any) -> list[RankedImage]:
    """The images of ``inputs`` (files, folders, globs), most uncertain first by score ``by``.

    ``options`` go to each checkpoint's :class:`Predictor` (``device``, ``precision``, ``backend``, ``tile``,
    ``overlap``, ...). ``maps_dir``: also write each image's ``<stem>_uncertainty.png`` of score ``by``, encoded
    as ``predict --save-uncertainty`` (0 certain .. 255 most uncertain). Equal scores keep the input order.
    """
    from tqdm.auto import tqdm

    paths = checkpoint_paths(checkpoints)
    check_score(by, len(paths))
    files = expand_inputs(inputs)
    predictors = open_predictors(paths, len(files), **options)
    if log is not None:
        log(f"backend: {predictors[0].backend.name}; {len(paths)} checkpoint(s), {len(files)} images, by {by}")
    targets = [t["uncertainty"] for t in output_paths(Path(maps_dir), files, ["uncertainty"])] if maps_dir else []
    # Each checkpoint streams the files in order (decoded, batched or tiled as predict does); zip pairs them up.
    streams = [p.predict_files(files, batch_size, workers, return_probs=True) for p in predictors]
    ranked = []
    for k, results in enumerate(tqdm(zip(*streams, strict=True), total=len(files), desc="rank",
                                     disable=None if progress else True, dynamic_ncols=True)):
        probs = torch.from_numpy(np.stack([labels_probs[1] for _, labels_probs in results]))
        scores, maps = image_scores(probs)
        ranked.append(RankedImage(files[k], scores))
        if targets:
            write_bytes(targets[k], encode_png(uncertainty_png_values(maps[by])), durable=False)
    return sorted(ranked, key=lambda r: -r.scores[by])  # sorted() is stable: ties keep the input order


def ranking_csv(ranked: Sequence[RankedImage], by: str, top: int | None = None) -> str:
    """The ranking as CSV text: ``rank,image,score`` (the score ``by``), then every score computed.

    >>> print(ranking_csv([RankedImage(Path("a.png"), {"entropy": 0.5, "margin": 0.25})], "entropy"), end="")
    rank,image,score,entropy,margin
    1,a.png,0.500000,0.500000,0.250000
    """
    names = list(ranked[0].scores) if ranked else [by]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "image", "score", *names])
    for k, item in enumerate(ranked[:top] if top is not None else ranked, start=1):
        writer.writerow([k, str(item.image), f"{item.scores[by]:.6f}", *(f"{item.scores[n]:.6f}" for n in names)])
    return buffer.getvalue()
