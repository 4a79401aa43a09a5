"""Do bf16 predictions agree with fp32 ones? Pixel agreement of a trained checkpoint on real images.

    python benchmarks/check_bf16.py RUN/best.safetensors [--data ../shared/data/camvid/val] [--limit 0]

Predicts every image with the PyTorch backend in fp32 (the reference), then with PyTorch bf16 autocast
(+ channels_last), OpenVINO bf16 and onnxruntime (fp32), and prints each one's share of pixels with the
reference's label; the bar is 99.5%. On CPUs without native bf16 the bf16 runs are emulated (slow) but
the numbers are the same. A runtime that is not installed is skipped. Exits 0 with a note when data is
missing, 1 when a run misses the bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pixelwise.core.errors import ConfigError
from pixelwise.inference.predictor import Predictor, expand_inputs

RUNS = (("torch", "bf16"), ("openvino", "bf16"), ("onnxruntime", "fp32"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid/val"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many images (0: all)")
    args = parser.parse_args(argv)
    if not args.data.is_dir() or not args.checkpoint.is_file():
        print(f"skipped: {args.data if not args.data.is_dir() else args.checkpoint} not found")
        return 0
    files = expand_inputs([args.data])[: args.limit or None]
    reference, _ = labels_of(args.checkpoint, files, "torch", "fp32")
    worst = 1.0
    for backend, precision in RUNS:
        try:
            labels, seconds = labels_of(args.checkpoint, files, backend, precision)
        except ConfigError as err:  # an optional runtime that is not installed: say so, go on
            print(f"{backend} {precision}: skipped ({err})")
            continue
        same = sum(int(np.count_nonzero(a == b)) for a, b in zip(reference, labels, strict=True))
        total = sum(a.size for a in reference)
        worst = min(worst, same / total)
        print(f"{len(files)} images from {args.data}: {backend} {precision} labels equal PyTorch fp32 on "
              f"{100 * same / total:.3f}% of {total} pixels (bar 99.5%: "
              f"{'met' if same / total >= 0.995 else 'NOT met'}); {seconds:.1f} s", flush=True)
    return 0 if worst >= 0.995 else 1


def labels_of(checkpoint: Path, files: list[Path], backend: str, precision: str) -> tuple[list[np.ndarray], float]:
    """Every file's labels through one backend and precision, and the seconds it took."""
    predictor = Predictor(checkpoint, device="cpu", precision=precision, backend=backend)
    start = time.perf_counter()
    labels = [labels for _, labels in predictor.predict_files(files, batch_size=4)]
    return labels, time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
