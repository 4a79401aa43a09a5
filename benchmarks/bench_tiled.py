"""Tiled prediction of a 4000x4000 image: seconds and peak memory growth.

    python benchmarks/bench_tiled.py [--size 4000] [--repeats 1] [--quick]

A random 4000x4000 RGB image through ``Predictor(model, precision="fp32", tile=(512, 512), overlap=0.25)``
with pixelwise's classic U-Net (base 16, depth 5, 11 classes, seeded random weights) on PyTorch fp32:
121 tiles in batches of 4, Gaussian-blended. Peak memory is the growth of the process's peak RSS
(VmHWM, reset by writing 5 to /proc/self/clear_refs) over its RSS before the call, after a warm-up
prediction of a 600x600 crop; run it in its own process (run_all.py does) so nothing else counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import print_rows, row, write_json

from pixelwise.data.presets import get_preset
from pixelwise.data.transforms import normalize
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.tiling import tile_starts
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta

TILE, OVERLAP = (512, 512), 0.25


def status_mib(key: str) -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) / 1024


def peak_growth_mib(fn) -> float | None:
    """Peak RSS during ``fn()`` minus the RSS before it; None where Linux's resettable peak is missing."""
    clear = Path("/proc/self/clear_refs")
    if not clear.exists():
        fn()
        return None
    clear.write_text("5")
    before = status_mib("VmRSS")
    fn()
    return status_mib("VmHWM") - before


def measure(size: int, repeats: int) -> dict:
    classes = get_preset("camvid")
    torch.manual_seed(0)
    model = create_model("unet", num_classes=classes.num_classes)
    model.meta = CheckpointMeta.for_model(model, classes)
    predictor = Predictor(model, precision="fp32", tile=TILE, overlap=OVERLAP)
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    predictor.predict(image[:600, :600])  # warm-up: kernels, allocator pools
    # The network alone on one batch of 4 tiles, measured the same way: the part of the peak tiling cannot shrink.
    tiles = torch.randint(0, 256, (4, 3, *TILE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    batch = normalize(tiles, predictor.meta.mean, predictor.meta.std)
    model_peak = peak_growth_mib(lambda: predictor.backend(batch))
    times, growths = [], []
    for r in range(repeats):
        start = time.perf_counter()
        growth = peak_growth_mib(lambda: predictor.predict(image))
        times.append(time.perf_counter() - start)
        growths.append(growth)
        print(f"  repeat {r + 1}/{repeats}: {times[-1]:.1f} s, peak RSS growth {growth} MiB", flush=True)
    n_tiles = len(tile_starts(size, TILE[0], round(TILE[0] * (1 - OVERLAP)))) ** 2
    growth = max(growths) if growths and growths[0] is not None else None
    seconds = statistics.median(times)
    accumulator = classes.num_classes * size * size * 4 / 2**20
    facts = {"size": size, "tiles": n_tiles, "repeats": repeats, "seconds": seconds, "peak_growth_mib": growth,
             "full_accumulator_mib": accumulator, "model_peak_mib": model_peak,
             "float_image_mib": 3 * size * size * 4 / 2**20,
             "params": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads()}
    memory = f"{growth:.0f} MiB peak RSS growth" if growth is not None else "peak RSS not measurable here"
    rows = [row(f"5 tiled predict {size}x{size} (classic U-Net fp32, 512x512 tiles, overlap 0.25)",
                "no baseline (see notes)",
                f"{seconds:.1f} s ({size * size / seconds / 1e6:.2f} MP/s), {memory}", None)]
    return {"rows": rows, "facts": facts, "notes": notes(facts)}


def notes(f: dict) -> list[str]:
    growth = f"{f['peak_growth_mib']:.0f} MiB" if f["peak_growth_mib"] is not None else "not measured"
    model = f"{f['model_peak_mib']:.0f} MiB" if f["model_peak_mib"] is not None else "not measured"
    return [f"Row 5: a random {f['size']}x{f['size']} RGB image, {f['tiles']} tiles of 512x512 (overlap 0.25) in "
            f"batches of 4 through pixelwise's classic U-Net ({f['params'] / 1e6:.1f}M parameters) in PyTorch fp32, "
            f"{f['threads']} threads; median of {f['repeats']} run(s) after a 600x600 warm-up, in a process of its "
            f"own. Peak RSS growth {growth} (VmHWM after resetting it, minus VmRSS before; the largest over the "
            f"runs). The network's forward on one batch of 4 tiles, measured alone the same way: {model}. "
            f"{share(f)} The logits of the whole image, blended at once, would alone take "
            f"{f['full_accumulator_mib']:.0f} MiB (plus {f['float_image_mib']:.0f} MiB for a float copy of "
            "the image). No baseline is timed: a U-Net run on the whole 16-megapixel image at once needs several "
            "GB of activations. There is no target for this row."]


def share(f: dict) -> str:
    growth, model = f["peak_growth_mib"], f["model_peak_mib"]
    if growth is None or model is None:
        return ""
    if model >= 0.6 * growth:
        return ("So the peak is mostly the network's activations for a batch of tiles, set by the tile size and "
                "`batch_size`, not by the image's size.")
    return f"The tiling's buffers and the labels make up the other {growth - model:.0f} MiB or so."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data", help="unused (the image is random); accepted so run_all passes every module the same")
    parser.add_argument("--quick", action="store_true", help="a 1024x1024 image: a smoke run")
    parser.add_argument("--json", help="also write the result here (for run_all.py)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.repeats = 1024, 1
    result = measure(args.size, args.repeats)
    print_rows(result["rows"])
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
