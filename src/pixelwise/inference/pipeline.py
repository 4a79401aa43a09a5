"""Work ahead of the model: decode the next images in the background while the model runs on these.

:meth:`pixelwise.inference.predictor.Predictor.predict_files` decodes and resizes images with
:func:`prefetch` (OpenCV releases the GIL while it decodes and resizes, so threads run truly in
parallel with the model), groups them with :func:`batched` (both in :func:`file_batches`, which uses
worker processes instead where there are cores to spare), and hands the batches to the backend's
``run_batches``, which keeps the model busy with the next batch while Python turns the logits of
this one into labels (OpenVINO runs requests asynchronously; see its backend). Only a backend that does
so (``Backend.overlaps``) is pipelined: beside PyTorch's own OpenMP threads, decoding threads cost more than
they hide (0.80x the sequential path on a quiet 2-core CPU, CamVid U-Net in bf16, 48 images).

Measured on the development 2-core CPU (CamVid checkpoint, 48 val images, OpenVINO bf16, median of 5 runs in
turn): pipelined 1.38x the sequential path on a quiet machine, 3.3x with other jobs on the cores (the sequential
path's single stream of two threads suffers most from them). Two variants made no difference there (1.00x and
1.01x): decoding threads at a lower OS priority (nice +10), so as never to preempt the model's threads, and
label work in two torch threads instead of one (the predictor keeps one beside an exported runtime, see
``pixelwise.core.device.torch_threads``). The priority is left alone: on such a CPU the model's streams are
single-threaded, so a preempted stream stalls only itself, not a barrier of all its threads.

>>> list(prefetch(lambda x: x * x, range(5), ahead=2))
[0, 1, 4, 9, 16]
>>> list(batched(iter("abcde"), 2))
[['a', 'b'], ['c', 'd'], ['e']]
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pixelwise.data.io import read_image
from pixelwise.data.transforms import resize_image

T = TypeVar("T")
R = TypeVar("R")

DECODE_THREADS = 2  # enough to keep a model fed on small CPUs; bigger CPUs use worker processes (resolve_workers)


def prefetch(fn: Callable[[T], R], items: Iterable[T], ahead: int, threads: int = DECODE_THREADS) -> Iterator[R]:
    """``fn(item)`` for each item, in order, computed by ``threads`` background threads at most ``ahead``
    items ahead of the consumer (bounded: a million files never sit decoded in memory at once).

    An exception in ``fn`` is raised here, at its item; stopping early cancels the items not yet started.
    """
    pending: deque[Future[R]] = deque()
    items = iter(items)
    with ThreadPoolExecutor(threads, thread_name_prefix="pixelwise-decode") as pool:
        try:
            for item in itertools.islice(items, max(1, ahead)):
                pending.append(pool.submit(fn, item))
            while pending:
                result = pending.popleft().result()
                for item in itertools.islice(items, 1):  # one finished, one more in: `ahead` stay queued
                    pending.append(pool.submit(fn, item))
                yield result
        finally:
            for future in pending:  # the consumer stopped early, or an item failed: drop the rest
                future.cancel()


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter when they do not divide evenly)."""
    while batch := list(itertools.islice(items, size)):
        yield batch


class ImageFiles(Dataset):
    """Image files decoded and resized to ``size`` (DataLoader workers or :func:`prefetch` threads call it), each
    with its own size, to which its labels are resized back."""

    def __init__(self, paths: Sequence[Path], size: tuple[int, int] | None) -> None:
        self.paths, self.size = list(paths), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        image = read_image(self.paths[index])
        resized = resize_image(image, self.size)  # eval_transform's resize, without importing albumentations
        return {"image": torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))),
                "out_size": torch.tensor(image.shape[:2]), "index": index}


def collate_images(items: list[dict]) -> dict[str, torch.Tensor]:
    """Images padded with 0 to the largest in the batch, with each one's true size and output size.

    Unlike the training collate this carries no mask: a zero int64 mask at the original size, only
    to say that size, cost 8 bytes per pixel (128 MB for a 4000x4000 photo) in every worker transfer.
    """
    h, w = max(i["image"].shape[1] for i in items), max(i["image"].shape[2] for i in items)
    if all(i["image"].shape[1:] == (h, w) for i in items):  # the usual case: nothing to pad
        images = torch.stack([i["image"] for i in items])
    else:
        images = torch.zeros((len(items), 3, h, w), dtype=torch.uint8)
        for k, item in enumerate(items):
            images[k, :, : item["image"].shape[1], : item["image"].shape[2]] = item["image"]
    return {"image": images, "image_size": torch.tensor([i["image"].shape[1:] for i in items]),
            "out_size": torch.stack([i["out_size"] for i in items]), "index": torch.tensor([i["index"] for i in items])}


def worker_context(workers: int) -> str | None:
    """How decoding workers start: ``"forkserver"`` once this process has loaded OpenVINO or onnxruntime,
    else the default (a fork); ``None`` without workers.

    A fork copies the locks of the thread pools those runtimes keep running, held or not, and a worker that
    meets a held one waits forever (a CI run hung so, predicting after OpenVINO had run in the process). A
    forkserver starts workers from a clean process instead; like ``spawn`` it imports the calling script, so a
    script that predicts with workers needs the usual ``if __name__ == "__main__":`` guard.
    """
    return "forkserver" if workers and {"openvino", "onnxruntime"} & set(sys.modules) else None


def file_batches(dataset: ImageFiles, batch_size: int, workers: int,
                 prepare: Callable[[dict], dict] | None = None) -> Iterator[dict]:
    """Collated batches of ``dataset``, each passed through ``prepare`` (e.g. to add the model's input), made ahead
    of the model: decoded by ``workers`` processes, or with none by :func:`prefetch` threads, which also collate
    and prepare (torch and OpenCV release the GIL: the main thread is left free to feed the model)."""
    prepare = prepare or (lambda batch: batch)
    if workers:
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_images,
                            multiprocessing_context=worker_context(workers))
        yield from map(prepare, loader)  # here, not in the workers: float inputs would cost 4x the transfer
        return

    def load(indices: list[int]) -> dict:
        return prepare(collate_images([dataset[i] for i in indices]))

    # Two batches ahead: the next is ready when the model takes it, while another one decodes.
    yield from prefetch(load, batched(iter(range(len(dataset))), batch_size), ahead=2)
