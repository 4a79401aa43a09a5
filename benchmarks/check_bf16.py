"""Do bf16 predictions agree with fp32 ones? Pixel agreement of a trained checkpoint on real images.

    python benchmarks/check_bf16.py RUN/best.safetensors [--data ../shared/data/camvid/val] [--limit 0]

Predicts every image twice with the PyTorch backend, fp32 and bf16 autocast (+ channels_last), and
prints the share of pixels with the same label; the bar is 99.5%. On CPUs without native bf16 the
bf16 run is emulated (slow) but the numbers are the same. Exits 0 with a note when data is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pixelwise.inference.predictor import Predictor, expand_inputs


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
    same = total = 0
    seconds = {}
    for precision in ("fp32", "bf16"):
        predictor = Predictor(args.checkpoint, device="cpu", precision=precision, backend="torch")
        start = time.perf_counter()
        labels = [labels for _, labels in predictor.predict_files(files, batch_size=4, workers=2)]
        seconds[precision] = time.perf_counter() - start
        if precision == "fp32":
            reference = labels
    for a, b in zip(reference, labels, strict=True):
        same += int(np.count_nonzero(a == b))
        total += a.size
    share = same / total
    print(f"{len(files)} images from {args.data}: bf16 labels equal fp32 on {100 * share:.3f}% of {total} pixels "
          f"(bar 99.5%: {'met' if share >= 0.995 else 'NOT met'}); fp32 {seconds['fp32']:.1f} s, "
          f"bf16 {seconds['bf16']:.1f} s")
    return 0 if share >= 0.995 else 1


if __name__ == "__main__":
    sys.exit(main())
