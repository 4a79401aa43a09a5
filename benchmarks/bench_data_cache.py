"""Data time of one CamVid training epoch: decoding files every epoch vs the decode-once cache.

    python benchmarks/bench_data_cache.py [--data ../shared/data/camvid] [--img-size 192x256] [--repeats 3]

Iterates the training split through the real dataset + augmentation + DataLoader (no model), so the
numbers are the time a training epoch spends waiting for data. Exits 0 with a note when the data
folder is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from pixelwise.data.cache import build_cache
from pixelwise.data.dataset import SegmentationDataset
from pixelwise.data.formats import open_dataset
from pixelwise.data.transforms import AugmentOptions, train_transform
from pixelwise.training.config import parse_size


def epoch_seconds(dataset: SegmentationDataset, workers: int, batch_size: int) -> float:
    start = time.perf_counter()
    for _ in DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False):
        pass
    return time.perf_counter() - start


def measure(data: str, img_size: str = "192x256", workers: int = 2, batch_size: int = 8, repeats: int = 3,
            limit: int | None = None) -> dict:
    """Seconds per epoch over the train split read from files and from the cache (medians), and the build time.

    ``limit``: only the first that-many training images (a quick smoke run).
    """
    size = parse_size(img_size)
    index = open_dataset(data)
    samples = index.split("train")[:limit]
    transform = train_transform(size, AugmentOptions())
    uncached = SegmentationDataset(samples, index.classes, transform)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        cache = build_cache(samples, index.reader, size, True, root, workers=workers, progress=False)
        build = time.perf_counter() - start
        cached = SegmentationDataset(samples, index.classes, transform, reader=cache)
        plain_times = [epoch_seconds(uncached, workers, batch_size) for _ in range(repeats)]
        cached_times = [epoch_seconds(cached, workers, batch_size) for _ in range(repeats)]
    return {"images": len(samples), "size": size, "workers": workers, "batch_size": batch_size, "repeats": repeats,
            "files_s": statistics.median(plain_times), "cached_s": statistics.median(cached_times), "build_s": build}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/camvid")
    parser.add_argument("--img-size", default="192x256")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"skipped: {args.data} not found (pass --data DIR)")
        return 0
    r = measure(args.data, args.img_size, args.workers, args.batch_size, args.repeats)
    plain, fast, size, build = r["files_s"], r["cached_s"], r["size"], r["build_s"]
    print(f"{r['images']} images at {size[1]}x{size[0]}, {args.workers} workers, median of {args.repeats}")
    print(f"  files every epoch : {plain:6.2f} s/epoch")
    print(f"  decode-once cache : {fast:6.2f} s/epoch  ({plain / fast:.1f}x faster; built once in {build:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
