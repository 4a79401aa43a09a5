"""The training data: the splits chosen, the dataset opened and checked, the decode-once cache, the datasets
and the loaders.

>>> import pathlib, tempfile
>>> from pixelwise.data.synthetic import write_dataset
>>> root = write_dataset(pathlib.Path(tempfile.mkdtemp()) / "data", n_train=4, n_val=2, height=16, width=16)
>>> index, scan = open_and_check(TrainConfig(data=str(root)), print)  # doctest: +ELLIPSIS
data: .../data (folders), 4 train / 2 val images, 6 classes...
>>> resolve_class_weights("inverse", scan, index.classes.names, lambda line: None)[:2]  # doctest: +ELLIPSIS
[...]
>>> train, held_out = chosen_splits(TrainConfig(data=str(root), folds=2, fold=1), index)  # cross-validation
>>> len(train), len(held_out)
(2, 2)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Subset

from pixelwise.core.device import resolve_workers
from pixelwise.core.errors import ConfigError, DataError
from pixelwise.data.cache import SampleCache, build_cache, cache_dir, estimated_bytes
from pixelwise.data.checks import ScanResult, class_weights, scan_dataset
from pixelwise.data.classes import ClassSpec
from pixelwise.data.dataset import SegmentationDataset, collate_padded
from pixelwise.data.formats import DatasetIndex, open_dataset
from pixelwise.data.sample import Sample, SampleReader
from pixelwise.data.transforms import eval_transform, rare_classes, train_transform
from pixelwise.training.config import TrainConfig
from pixelwise.training.sampler import EpochSampler

Log = Callable[[str], None]


@dataclass
class TrainData:
    """Everything the loop reads: the training set and its sampler, the validation set and its loader."""

    index: DatasetIndex
    train_scan: ScanResult  # pixels per class of the training split (for class weights)
    train_set: SegmentationDataset
    sampler: EpochSampler
    val_set: SegmentationDataset
    val_loader: DataLoader  # this process's slice of the validation set

    @property
    def classes(self) -> ClassSpec:
        return self.index.classes


def fold_split(samples: list[Sample], folds: int, fold: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """The samples fold ``fold`` of ``folds`` trains on, and those it holds out (both in the given order).

    The samples are put in file-name order and shuffled with ``seed``; the ``i``-th of the shuffle belongs to
    fold ``i % folds``, so the folds differ in size by one at most and every sample is held out by exactly
    one fold. The file names alone decide, so every process of a run, every ``--resume`` and every fold
    of a cross-validation agree on the assignment, whatever order a format lists its files in.

    >>> from pathlib import Path
    >>> samples = [Sample(Path(f"{i}.png"), Path(f"{i}_mask.png")) for i in range(7)]
    >>> held_out = [fold_split(samples, 3, k, seed=0)[1] for k in range(3)]
    >>> sorted(s.image.name for part in held_out for s in part) == sorted(s.image.name for s in samples)
    True
    >>> [len(part) for part in held_out]
    [3, 2, 2]
    """
    if len(samples) < folds:
        raise DataError(f"{folds} folds need at least {folds} training images; the split has {len(samples)}")
    by_name = sorted(range(len(samples)), key=lambda i: (str(samples[i].image), str(samples[i].mask)))
    shuffled = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {by_name[j] for position, j in enumerate(shuffled) if position % folds == fold}
    return [s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held]


def chosen_splits(cfg: TrainConfig, index: DatasetIndex) -> tuple[list[Sample], list[Sample]]:
    """The samples a run trains on and those it validates on: ``train_split`` and ``val_split``, or, for
    one fold of a cross-validation (``cfg.fold`` set), the other folds of ``train_split`` and fold ``cfg.fold``.

    A fold never reads ``val_split``: it stays unseen, for an honest score of the folds' ensemble. A final fit
    (``cfg.final_fit``) trains on ``train_split`` and ``val_split`` together (and still validates on the latter,
    which then measures nothing but shows the run is sane).
    """
    if cfg.final_fit:
        return index.split(cfg.train_split) + index.split(cfg.val_split), index.split(cfg.val_split)
    if cfg.fold is None:
        return index.split(cfg.train_split), index.split(cfg.val_split)
    assert cfg.folds is not None  # TrainConfig refuses a fold without folds
    return fold_split(index.split(cfg.train_split), cfg.folds, cfg.fold, cfg.seed)


def open_and_check(cfg: TrainConfig, log: Log) -> tuple[DatasetIndex, ScanResult]:
    """Open the dataset, check every file the run reads, and log what was found."""
    index = open_dataset(cfg.data, cfg.format, cfg.classes)
    train_samples, val_samples = chosen_splits(cfg, index)
    # The scan of the training samples gives the class weights: a fold's are those of its own images.
    train_scan = scan_dataset(train_samples, index.classes, reader=index.reader)  # fails fast on a bad file
    scan_dataset(val_samples, index.classes, reader=index.reader)
    counts = train_scan.class_pixels
    absent = [n for n, c in zip(index.classes.names, counts[:-1], strict=True) if c == 0]
    held_out = "val" if cfg.fold is None else f"held-out (fold {cfg.fold} of {cfg.folds} of '{cfg.train_split}')"
    log(f"data: {index.root} ({index.format}), {len(train_samples)} train / {len(val_samples)} {held_out} "
        f"images, {index.classes.num_classes} classes"
        + (f"; not in train: {', '.join(absent)}" if absent else ""))
    if cfg.final_fit:
        log(f"final fit: training on '{cfg.train_split}' + '{cfg.val_split}'; the last epoch is kept and its "
            f"'{cfg.val_split}' scores measure nothing (the model trained on those images)")
    for note in index.notes:
        log(note)
    decoder = getattr(index.reader, "decoder", None)
    if decoder is not None and decoder.summary():
        log(f"warning: {decoder.summary()}")
    return index, train_scan


# Images trained as crops are predicted by tiles of the crop only when they hold more than this many crops'
# pixels: whole-image prediction sees the full context (and is what validation scores), but its memory grows
# with the image; CamVid's 360x480 frames under 240x320 crops (2.25x) are still predicted whole.
TILE_ABOVE_CROPS = 4


def inference_tile(img_size: tuple[int, int] | None, crop_size: tuple[int, int] | None,
                   sizes: Counter) -> tuple[int, int] | None:
    """The tile a checkpoint should predict with: the crop, for large images trained as crops at their own size.

    >>> inference_tile(None, (512, 512), Counter({(2000, 3000): 5}))
    (512, 512)
    >>> inference_tile(None, (240, 320), Counter({(360, 480): 5})) is None
    True
    """
    if img_size is not None or crop_size is None or not sizes:
        return None
    areas = sorted(h * w for (h, w), n in sizes.items() for _ in range(n))
    median_area = areas[len(areas) // 2]
    return crop_size if median_area > TILE_ABOVE_CROPS * crop_size[0] * crop_size[1] else None


def prepare_data(cfg: TrainConfig, accelerator: Accelerator, log: Log) -> TrainData:
    """The checked dataset, cached when asked, as a training set and this process's validation loader."""
    index, train_scan = open_and_check(cfg, log)
    size = cfg.img_size
    if size is None and cfg.crop_size is None:
        raise ConfigError("img_size or crop_size is required for training (images of one size make a batch); "
                          "e.g. img_size 256x256, or crop_size 512x512 to train on crops at the images' own size")
    train_samples, val_samples = chosen_splits(cfg, index)
    train_reader = cached_reader(cfg, accelerator, log, train_samples, index, size, resize_mask=True)
    # Validation masks keep their full size: the metrics are those of the original labels.
    val_reader = cached_reader(cfg, accelerator, log, val_samples, index, size, resize_mask=False)
    rare = rare_classes(train_scan.class_pixels[:-1] / max(train_scan.class_pixels[:-1].sum(), 1))
    if cfg.augment.rare_class_crops and rare:
        log(f"rare-class crops: {100 * cfg.augment.rare_class_crops:.0f}% of crops show one of "
            + ", ".join(index.classes.names[c] for c in rare))
    train_set = SegmentationDataset(train_samples, index.classes, train_transform(size, cfg.augment, cfg.crop_size,
                                                                                  rare),
                                    seed=cfg.seed, reader=train_reader)
    rank, world = accelerator.process_index, accelerator.num_processes
    sampler = EpochSampler(len(train_set), cfg.seed, rank, world)
    val_set = SegmentationDataset(val_samples, index.classes, eval_transform(size), augment=False,
                                  reader=val_reader)
    # Each process scores its own slice of the validation set, without the padding a
    # DistributedSampler adds, so the all-reduced confusion matrix counts every image once.
    val_loader = DataLoader(Subset(val_set, range(rank, len(val_set), world)), batch_size=cfg.batch_size,
                            num_workers=resolve_workers(cfg.workers, accelerator.device), collate_fn=collate_padded)
    return TrainData(index, train_scan, train_set, sampler, val_set, val_loader)


def cached_reader(cfg: TrainConfig, accelerator: Accelerator, log: Log, samples: list[Sample], index: DatasetIndex,
                  size: tuple[int, int] | None, resize_mask: bool) -> SampleReader | SampleCache:
    """The decode-once cache of a split when enabled and small enough, else the format's reader."""
    if not cfg.cache:
        return index.reader
    need = estimated_bytes(samples, index.reader, size, resize_mask)
    if need > cfg.cache_max_gb * 2**30:
        log(f"cache: {need / 2**30:.1f} GB needed > cache_max_gb {cfg.cache_max_gb}; reading files")
        return index.reader
    # One process per machine builds (the cache lives on each machine's disk); the others then find it.
    with accelerator.local_main_process_first():
        return build_cache(samples, index.reader, size, resize_mask, cache_dir() / "datacache",
                           progress=cfg.progress and accelerator.is_main_process)


def resolve_class_weights(weights: list[float] | str | None, scan: ScanResult, names: list[str],
                          log: Log) -> list[float] | None:
    """The loss's class weights: as given, or computed from the training split's pixel counts."""
    if isinstance(weights, str):
        weights = class_weights(scan, "median" if weights == "auto" else weights)
        log("class weights: " + ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=True)))
    return weights


def train_loader(train_set: SegmentationDataset, sampler: EpochSampler, cfg: TrainConfig, epoch: int,
                 device: torch.device) -> DataLoader:
    """The loader of one epoch.

    A fresh loader per epoch, with its own seeded generator: worker seeds then never draw on
    the global RNG, whose state (for dropout) a resumed run restores exactly.
    """
    return DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                      num_workers=resolve_workers(cfg.workers, device),
                      drop_last=len(sampler) >= cfg.batch_size,
                      generator=torch.Generator().manual_seed(cfg.seed + epoch),
                      persistent_workers=False, pin_memory=device.type == "cuda")
