"""The run report: ``RUN/report.html``, one page that shows what a training run learned and where it fails.

The trainer writes it when training ends (:func:`write_report_or_warn`); :func:`write_report` writes it for
any finished run. This module gathers what the page shows, :mod:`pixelwise.training.report_html` draws it:

* the recipe (``config.yaml``) and, when a planner wrote one, its choices and their reasons (``plan.yaml``);
* the epochs (``metrics.csv``) and the best epoch's metrics (``best_metrics.json``);
* one pass of the best checkpoint over the validation split, or a cross-validation fold's held-out images
  (at most :data:`MAX_IMAGES` images, evenly spread, at the checkpoint's input size, with PyTorch): the
  confusion matrix of those images, and the best and worst of them by their own mIoU, with the uncertainty
  of each predicted pixel;
* the training split's fingerprint (:mod:`pixelwise.data.fingerprint`).

A report is never worth a finished training: :func:`write_report_or_warn` turns any error into one warning
line, and the page itself is written atomically, so it is either whole or absent.

>>> keep = Extremes(2)   # the 2 best and the 2 worst of a stream, without holding the others
>>> for score, name in [(0.5, "a"), (0.9, "b"), (0.1, "c"), (0.7, "d"), (0.3, "e")]:
...     if keep.wants(score):
...         keep.add(score, name)
>>> [name for _, name in keep.best()], [name for _, name in keep.worst()]
(['b', 'd'], ['c', 'e'])
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from pixelwise.core.errors import ConfigError, PixelwiseError, one_line
from pixelwise.core.files import write_text
from pixelwise.core.metrics import ConfusionMatrix
from pixelwise.core.uncertainty import normalized_entropy
from pixelwise.core.yamlfile import read_yaml
from pixelwise.data.dataset import SegmentationDataset, collate_padded
from pixelwise.data.fingerprint import Fingerprint, evenly_spaced, fingerprint_dataset
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.data.sample import Sample, SampleReader
from pixelwise.data.transforms import eval_transform, normalize
from pixelwise.models.base import logits_at_size
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint
from pixelwise.models.tta import with_tta
from pixelwise.training.data_setup import fold_split
from pixelwise.training.outputs import BEST_CHECKPOINT, read_best_metrics

REPORT = "report.html"
PLAN = "plan.yaml"  # written by the planner, when it chose the recipe
MAX_IMAGES = 200  # validation images the report's pass looks at: seconds, not minutes, on any split
SHOWN = 4  # best and worst images shown, each
THUMB_WIDTH = 280  # px: pictures are shrunk to this width (4 fit side by side), so the page stays small

T = TypeVar("T")


class Extremes(Generic[T]):
    """The ``count`` highest and ``count`` lowest scored items of a stream, holding no others.

    Once ``2 * count`` items are held, one that is neither among the lowest nor among the highest can
    never become either, so it is dropped as it comes: memory stays that of ``2 * count`` items.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.items: list[tuple[float, T]] = []  # sorted by score, lowest first

    def wants(self, score: float) -> bool:
        """Whether an item of this score would be kept: ask first, then build the (costly) item."""
        if len(self.items) < 2 * self.count:
            return True
        return score < self.items[self.count - 1][0] or score > self.items[-self.count][0]

    def add(self, score: float, item: T) -> None:
        self.items.append((score, item))
        self.items.sort(key=lambda pair: pair[0])  # stable: of equal scores, the first seen stays first
        if len(self.items) > 2 * self.count:
            del self.items[self.count]  # the middle one

    def best(self) -> list[tuple[float, T]]:
        """Highest first; of fewer than ``2 * count`` items, the upper half (so no item is in both lists)."""
        return self.items[::-1][: min(self.count, (len(self.items) + 1) // 2)]

    def worst(self) -> list[tuple[float, T]]:
        """Lowest first; of fewer than ``2 * count`` items, the lower half."""
        return self.items[: min(self.count, len(self.items) // 2)]


@dataclass
class ImageReview:
    """One validation image as the report shows it, every picture shrunk to at most THUMB_WIDTH wide."""

    name: str  # the image file's name
    miou: float  # of this image alone
    image: np.ndarray  # (H, W, 3) uint8 RGB
    truth: np.ndarray  # (H, W) class ids, negative = ignored
    prediction: np.ndarray  # (H, W) class ids
    uncertainty: np.ndarray  # (H, W) float in 0..1, see :func:`uncertainty`


@dataclass
class ValReview:
    """What the best checkpoint's pass over the validation images found."""

    confusion: np.ndarray  # [truth, prediction] pixel counts over the reviewed images
    reviewed: int  # images looked at (at most MAX_IMAGES)
    total: int  # images in the split
    best: list[ImageReview]
    worst: list[ImageReview]


@dataclass
class RunReport:
    """Everything the page shows; :func:`pixelwise.training.report_html.render_report` draws it."""

    run_dir: Path
    config: dict[str, Any]  # config.yaml
    plan: list[dict[str, Any]] | None  # plan.yaml's choices, when the planner wrote one
    history: list[dict[str, Any]]  # metrics.csv, one row per epoch
    best_metrics: dict[str, Any]  # best_metrics.json
    meta: CheckpointMeta  # of the best checkpoint: classes, input size, the best epoch
    review: ValReview
    fingerprint: Fingerprint | None
    fingerprint_note: str = ""  # why there is no fingerprint


def uncertainty(logits: torch.Tensor) -> np.ndarray:
    """Per pixel of ``(C, H, W)`` logits: the softmax's entropy over log(C), 0 = certain, 1 = a uniform guess.

    Dividing by log(C), the entropy of a uniform guess, puts models of any class count on one scale.

    >>> uncertainty(torch.zeros(4, 1, 2)).tolist()   # all classes equally likely
    [[1.0, 1.0]]
    >>> float(uncertainty(torch.tensor([[[20.0]], [[-20.0]]]))[0, 0]) < 1e-6
    True
    """
    # The measure `predict --save-uncertainty` and the server's uncertainty maps use (entropy, their default).
    return normalized_entropy(torch.softmax(logits.float(), dim=0)).cpu().numpy()


def _shrink_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize that keeps any integer dtype (cv2.resize refuses int64 labels)."""
    rows = np.arange(height) * labels.shape[0] // height
    cols = np.arange(width) * labels.shape[1] // width
    return labels[rows[:, None], cols[None, :]]


def review_image(sample: Sample, reader: SampleReader, score: float, truth: torch.Tensor, logits: torch.Tensor
                 ) -> ImageReview:
    """The pictures of one image: its ``(C, H, W)`` logits are at the size of its ``(H, W)`` mask."""
    h, w = truth.shape
    image = reader.read_image(sample)
    if image.shape[:2] != (h, w):  # a format may store labels at another size than the image
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    th, tw = (h, w) if w <= THUMB_WIDTH else (max(1, round(h * THUMB_WIDTH / w)), THUMB_WIDTH)
    prediction = logits.max(0).indices.cpu().numpy()
    return ImageReview(
        name=sample.image.name, miou=score,
        image=cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA),
        truth=_shrink_labels(truth.numpy(), th, tw), prediction=_shrink_labels(prediction, th, tw),
        uncertainty=cv2.resize(uncertainty(logits), (tw, th), interpolation=cv2.INTER_AREA))


@torch.no_grad()
def review_split(model: nn.Module, meta: CheckpointMeta, index: DatasetIndex, samples: list[Sample],
                 device: torch.device, workers: int = 0) -> ValReview:
    """One pass of ``model`` over (at most MAX_IMAGES of) ``samples``, each image scored at its mask's size."""
    chosen = evenly_spaced(samples, MAX_IMAGES)
    dataset = SegmentationDataset(chosen, meta.classes, eval_transform(meta.input_size), augment=False,
                                  reader=index.reader)
    loader = DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_padded)
    n = meta.classes.num_classes
    total = ConfusionMatrix(n)
    extremes: Extremes[ImageReview] = Extremes(SHOWN)
    model = model.to(device).eval()
    predict = with_tta(model, scales=[meta.predict_scale])  # as `pixelwise predict` runs it
    for batch in loader:
        logits = predict(normalize(batch["image"].to(device), meta.mean, meta.std)).float()
        for k in range(logits.shape[0]):
            mh, mw = (int(s) for s in batch["mask_size"][k])
            item = logits_at_size(logits[k], batch["image_size"][k], (mh, mw))
            truth = batch["mask"][k, :mh, :mw]
            own = ConfusionMatrix(n)
            own.update(item.max(0).indices.cpu(), truth)
            total.mat += own.mat
            score = own.compute()["miou"]  # NaN for an image with no labelled pixel: it cannot be ranked
            if math.isfinite(score) and extremes.wants(score):
                sample = chosen[int(batch["index"][k])]
                extremes.add(score, review_image(sample, index.reader, score, truth, item))
    return ValReview(total.mat.numpy(), len(chosen), len(samples), [r for _, r in extremes.best()],
                     [r for _, r in extremes.worst()])


def read_history(run_dir: Path) -> list[dict[str, float | None]]:
    """metrics.csv as numbers; an empty cell (a metric not computed that epoch) is None."""
    with (run_dir / "metrics.csv").open(newline="") as f:
        return [{key: float(value) if value else None for key, value in row.items()} for row in csv.DictReader(f)]


def read_plan(run_dir: Path) -> list[dict[str, Any]] | None:
    """plan.yaml's choices ``[{key, value, reason, source}]`` (as ``Plan.records()`` makes them), or None.

    The list may also stand under a ``choices`` key, for a planner that records more beside it.
    """
    path = run_dir / PLAN
    if not path.is_file():
        return None
    data = read_yaml(path, ConfigError, "not found")
    choices = data.get("choices") if isinstance(data, dict) else data
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise ConfigError(f"{path}: expected a list of {{key, value, reason, source}} entries")
    return choices


def validated_samples(config: dict[str, Any], index: DatasetIndex) -> list[Sample]:
    """The images the run (its ``config.yaml``) validated on: its val split, or its held-out fold."""
    if config.get("fold") is None:
        return index.split(config.get("val_split", "val"))
    train_split = index.split(config.get("train_split", "train"))
    return fold_split(train_split, config["folds"], config["fold"], config.get("seed", 0))[1]


def dataset_fingerprint(index: DatasetIndex, split: str) -> tuple[Fingerprint | None, str]:
    """The fingerprint of the training split, or None and why (the page then says so, and goes on)."""
    try:
        return fingerprint_dataset(index.root, index.format, index.classes, split=split), ""
    except PixelwiseError as e:
        return None, one_line(e)


def gather(run_dir: Path, index: DatasetIndex | None = None, device: torch.device | str = "cpu",
           workers: int = 0) -> RunReport:
    """Read the run's files and review its best checkpoint; ``index``: the dataset, if already open."""
    config = read_yaml(run_dir / "config.yaml", ConfigError, "not found (is this a run folder?)")
    model, meta = load_checkpoint(run_dir / BEST_CHECKPOINT)
    if index is None:  # a run written earlier: its dataset, read with the classes the model predicts
        index = open_dataset(config["data"], config.get("format", "auto"), meta.classes)
    review = review_split(model, meta, index, validated_samples(config, index), torch.device(device), workers)
    fingerprint, note = dataset_fingerprint(index, config.get("train_split", "train"))
    return RunReport(run_dir, config, read_plan(run_dir), read_history(run_dir), read_best_metrics(run_dir), meta,
                     review, fingerprint, note)


def write_report(run_dir: str | Path, index: DatasetIndex | None = None, device: torch.device | str = "cpu",
                 workers: int = 0) -> Path:
    """Write ``run_dir/report.html`` for a run with a best checkpoint; returns its path.

    ``index`` is the run's dataset when already open (the trainer's), else opened as config.yaml says.
    """
    # Imported here, not with this module: report_html draws with matplotlib (about half a second to
    # import), and `import pixelwise` imports the trainer, which imports this module.
    from pixelwise.training.report_html import render_report

    run_dir = Path(run_dir)
    page = render_report(gather(run_dir, index, device, workers))
    write_text(run_dir / REPORT, page)
    return run_dir / REPORT


def write_report_or_warn(run_dir: Path, index: DatasetIndex | None, device: torch.device | str,
                         log: Callable[[str], None], workers: int = 0) -> Path | None:
    """:func:`write_report` for the end of training: any error is one warning line, and None is returned.

    Also None, silently, when there is no best checkpoint (a run stopped before its first validation).
    """
    if not (run_dir / BEST_CHECKPOINT).is_file():
        return None
    try:
        return write_report(run_dir, index, device, workers)
    except Exception as e:  # noqa: BLE001 - whatever went wrong, the checkpoint and metrics are already written
        log(f"warning: no report written ({type(e).__name__}: {one_line(e)}); the run's other files are complete")
        return None
