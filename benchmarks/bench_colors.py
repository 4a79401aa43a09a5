"""Benchmark: colour mask -> class ids, ``colors_to_ids`` against the loop found in popular tutorials.

Builds a street-scene-like colour mask (rectangles of 34 class colours), JPEG-encodes it at quality 75
as such masks often are, then times both and checks their answers are identical.

    python benchmarks/bench_colors.py [--size 256] [--repeats 5]

Exits 1 when the outputs differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from pixelwise.data.colors import _cell_lookup, colors_to_ids


# The tutorial's function, verbatim.
def FindLabels(mask, mapping):            # mapping: id -> np.array([r, g, b])
    distance = np.full(mask.shape[:2], 99999)
    category = np.full(mask.shape[:2], None)
    for id, color in mapping.items():
        dist = np.sqrt(np.linalg.norm(mask - color.reshape([1, 1, -1]), axis=-1))
        condition = distance > dist
        distance = np.where(condition, dist, distance)
        category = np.where(condition, id, category)
    return category


def reference(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The tutorial function, wrapped. The mask is cast to int64 first: on uint8 ``mask - color`` wraps
    around and the answer is not the nearest colour. sqrt(norm) is monotonic in the distance and the
    strict ``>`` keeps the first (lowest) id on ties, so this is the same rule as ``colors_to_ids``."""
    mapping = {i: palette[i].astype(np.int64) for i in range(len(palette))}
    return FindLabels(mask.astype(np.int64), mapping).astype(np.int64)


def make_palette(n: int = 34, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    colors: set[tuple[int, int, int]] = set()
    while len(colors) < n:
        colors.add(tuple(int(c) for c in rng.integers(0, 256, 3)))
    return np.array(sorted(colors), np.uint8)


def make_mask(size: int, palette: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rectangles of palette colours over a background, then a JPEG round trip (quality 75)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((size, size), np.int64)
    for _ in range(60):
        y, x = rng.integers(0, size, 2)
        h, w = rng.integers(size // 16, size // 3, 2)
        ids[y : y + h, x : x + w] = rng.integers(0, len(palette))
    clean = palette[ids]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(clean, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int = 256, repeats: int = 5) -> dict:
    """Times (seconds) of the reference and of ``colors_to_ids`` on one mask; ``identical`` checks the answers."""
    palette = make_palette()
    mask = make_mask(size, palette)
    # The reference has no tolerance: compare with one large enough that no pixel is ignored.
    ours, unknown = colors_to_ids(mask, palette, tolerance=float("inf"))
    expected = reference(mask, palette)
    result = {"size": size, "repeats": repeats, "palette": len(palette),
              "distinct": len(np.unique(mask.reshape(-1, 3), axis=0)),
              "identical": not unknown and bool(np.array_equal(ours, expected)),
              "differing": int(np.count_nonzero(ours != expected)), "unknown": int(unknown)}
    if not result["identical"]:
        return result
    result["reference_s"] = median_time(lambda: reference(mask, palette), repeats)
    colors_to_ids(mask, palette, tolerance=30.0)  # first call builds the cached lookup, as a dataset's first mask does
    result["ours_s"] = median_time(lambda: colors_to_ids(mask, palette, tolerance=30.0), max(repeats, 20))
    result["ours_inf_s"] = median_time(lambda: colors_to_ids(mask, palette, tolerance=float("inf")),
                                       max(repeats, 20))
    start = time.perf_counter()
    _cell_lookup.cache_clear()
    colors_to_ids(mask, palette, tolerance=30.0)
    result["cold_s"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    r = measure(args.size, args.repeats)
    print(f"mask {r['size']}x{r['size']}, {r['palette']} palette colours, {r['distinct']} distinct colours after JPEG")
    if not r["identical"]:
        print(f"MISMATCH: {r['differing']} pixels differ, {r['unknown']} ignored")
        return 1
    t_ref, t_ours, t_ours_inf = r["reference_s"], r["ours_s"], r["ours_inf_s"]
    print(f"reference (tutorial loop): {t_ref * 1e3:9.2f} ms  (median of {args.repeats})")
    print(f"colors_to_ids, tol 30:     {t_ours * 1e3:9.2f} ms  -> {t_ref / t_ours:.0f}x faster")
    print(f"colors_to_ids, tol inf:    {t_ours_inf * 1e3:9.2f} ms  -> {t_ref / t_ours_inf:.0f}x faster")
    print(f"colors_to_ids, first call (builds the lookup): {r['cold_s'] * 1e3:.2f} ms")
    print("outputs identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
