"""Shared pieces of the benchmarks: timing, rows of the results table, machine facts.

Every ``bench_*.py`` module measures one or more rows of ``docs/benchmarks.md``. A row is a plain
dict (so it crosses a process boundary as JSON)::

    {"row": "...", "baseline": "...", "pixelwise": "...", "ratio": 3.1, "target": 7.0, "note": "..."}

``ratio`` is pixelwise's speed over the baseline's (higher is better); ``target`` is the issue's goal,
``None`` where it sets none. A row that could not run carries ``"skipped": "<why>"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_DATA = "../shared/data/camvid"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn`` (call it once before to warm up)."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def image_bench_parser(doc: str, images: int) -> argparse.ArgumentParser:
    """The options of a benchmark over CamVid val images: --data, --images, --repeats, --quick, --json
    (read them with :func:`parse_image_bench_args`, which applies --quick)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=images)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 images, 1 repeat: a smoke run")
    parser.add_argument("--json", help="also write the result here (for run_all.py)")
    return parser


def parse_image_bench_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = 4, 1
    return args


def row(name: str, baseline: str, pixelwise: str, ratio: float | None, target: float | None = None,
        note: str = "", **extra: object) -> dict:
    return {"row": name, "baseline": baseline, "pixelwise": pixelwise, "ratio": ratio, "target": target,
            "note": note, **extra}


def skipped(name: str, why: str, target: float | None = None) -> dict:
    return {"row": name, "baseline": "-", "pixelwise": "-", "ratio": None, "target": target, "note": "",
            "skipped": why}


def has_data(data: str | Path) -> bool:
    root = Path(data)
    return all((root / d).is_dir() for d in ("train", "trainannot", "val", "valannot"))


def write_json(path: str | Path | None, result: dict) -> None:
    """Write a module's result where the runner asked for it (``--json PATH``)."""
    if path:
        Path(path).write_text(json.dumps(result, indent=1))


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        if r.get("skipped"):
            print(f"  {r['row']}: skipped: {r['skipped']}")
            continue
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
        target = f" (target {r['target']:g}x)" if r.get("target") else ""
        print(f"  {r['row']}: baseline {r['baseline']} | pixelwise {r['pixelwise']} | {ratio}{target}")


def openvino_bf16() -> bool | None:
    """Whether OpenVINO's CPU plugin reports native bf16 (None: OpenVINO not installed)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def load_average() -> float | None:
    """The 1-minute load average: other jobs on the machine slow every figure (ratios less, being side by side)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, of this process and its waited-for descendants) so far.

    The difference over a run is what other jobs took; /proc/stat counts in clock ticks (USER_HZ).
    """
    import resource

    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    own = sum(getattr(resource.getrusage(who), k) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for k in ("ru_utime", "ru_stime"))
    return busy, own


def machine_info() -> dict:
    """The facts the results depend on: CPU, cores, bf16, RAM, versions, threads."""
    import torch

    from pixelwise import __version__
    from pixelwise.core.machine import machine_facts

    def version(module: str) -> str:
        try:
            return __import__(module).__version__
        except ImportError:
            return "not installed"

    facts = machine_facts()
    return {
        "cpu": facts["cpu"], "cores": os.cpu_count(), "ram_gib": facts["ram_gib"],
        "avx512": facts["avx512"], "amx": facts["amx"], "avx512_bf16": facts["avx512_bf16"],
        "avx512_vnni": facts["avx512_vnni"], "torch_fast_bf16": facts["torch_fast_bf16"],
        "openvino_bf16": openvino_bf16(),
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": version("onnxruntime"),
        "openvino": version("openvino"), "smp": version("segmentation_models_pytorch"), "pixelwise": __version__,
        "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": load_average(),
    }
