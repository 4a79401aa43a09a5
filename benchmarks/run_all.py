"""Every benchmark in one run (``make bench``): writes docs/benchmarks.md and docs/benchmarks.png.

    python benchmarks/run_all.py [--data ../shared/data/camvid] [--out docs/benchmarks.md] [--repeats 3] [--quick]
    python benchmarks/run_all.py --only serve --update     # measure some rows again, keep the report's others

Rows, each pixelwise against a baseline measured side by side in the same run:

1. predict images/s at 352x480 (bench_predict.py): defaults vs a plain smp loop and vs bare OpenVINO,
   and every backend for the smp U-Net and pixelwise's classic U-Net; pixelwise end to end vs the fair OpenVINO
   script (openvino_peer.py) and pipelined vs sequential, in a process of their own (``--only peer``);
   ``pixelwise predict`` as a whole process, cold (no IR yet) and warm (the IR train writes), vs the plain smp
   loop's whole process (bench_predict_process.py);
   int8 models (NNCF) of three networks vs the plain loop and vs pixelwise's bf16, and the CPU's int8 peak
   (bench_int8.py);
2. train images/s at 256x256, batch 8 (bench_train.py): pixelwise.train vs a plain smp + PyTorch loop;
3. colour mask -> class ids (bench_colors.py): ``colors_to_ids`` vs the tutorial function;
4. data seconds per CamVid epoch (bench_data_cache.py): decode-once cache vs decoding files;
5. tiled prediction of a 4000x4000 image (bench_tiled.py): seconds and peak memory;
6. ``pixelwise serve`` under load (bench_serve.py): 16 concurrent clients vs one at a time, with and
   without batching;

then bench_peak.py measures the CPU's fp32/bf16 arithmetic peaks and profiles a training step, and the
report sets rows 1 and 2 against those peaks ("What bounds ..." in the notes).

Rows 1, 2, 5, 6 and the peaks run in processes of their own (clean peak-memory figures, no state shared between
runtimes). Rows needing CamVid say "skipped: no data" when ``--data`` is absent. ``--quick`` is a smoke
run of a few minutes with tiny counts; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_colors  # noqa: E402
import bench_data_cache  # noqa: E402
from bench_common import (  # noqa: E402
    DEFAULT_DATA,
    cpu_seconds,
    has_data,
    load_average,
    machine_info,
    print_rows,
    row,
    skipped,
)
from bench_peak import bound_notes  # noqa: E402
from bench_report import chart, markdown, update_report  # noqa: E402

ROWS = ("predict", "peer", "process", "int8", "train", "colors", "cache", "tiled", "serve", "peak")


def run_module(script: str, args: list[str], name: str) -> dict:
    """Run ``benchmarks/<script>`` in its own process; its rows, or one row saying it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        code = subprocess.call([sys.executable, str(HERE / script), *args, "--json", str(out)])
        if code == 0 and out.is_file():
            return json.loads(out.read_text())
    return {"rows": [skipped(name, f"{script} failed (exit {code}); see its output")], "facts": {}, "notes": []}


def colors_row(repeats: int, quick: bool) -> dict:
    size = 64 if quick else 256
    r = bench_colors.measure(size, repeats)
    name = f"3 colour mask -> class ids, {size}x{size} JPEG mask, 34 colours"
    if not r["identical"]:
        return {"rows": [skipped(name, f"outputs differ in {r['differing']} pixels", 100.0)], "notes": []}
    note = (f"Row 3: a {size}x{size} street-like mask of {r['palette']} colours after a JPEG round trip "
            f"({r['distinct']} distinct colours). Reference: the tutorial `FindLabels` loop quoted in the formats "
            f"issue (median of {repeats}); pixelwise: `colors_to_ids(mask, palette, tolerance=30)` with its "
            f"per-palette lookup already built, as for every mask after a dataset's first (median of "
            f"{max(repeats, 20)}; with tolerance inf {r['ours_inf_s'] * 1e3:.2f} ms; the first call, which builds "
            f"the lookup, {r['cold_s'] * 1e3:.0f} ms). Both give identical class ids.")
    return {"rows": [row(name, f"{r['reference_s'] * 1e3:.1f} ms (tutorial loop)",
                         f"{r['ours_s'] * 1e3:.2f} ms (colors_to_ids)", r["reference_s"] / r["ours_s"], 100.0)],
            "notes": [note]}


def cache_row(data: str, repeats: int, quick: bool) -> dict:
    name = "4 data time per CamVid train epoch, 256x256: cache vs files"
    if not has_data(data):
        return {"rows": [skipped(name, "no data")], "notes": []}
    r = bench_data_cache.measure(data, "256x256", workers=2, batch_size=8, repeats=repeats, limit=16 if quick else None)
    note = (f"Row 4: the {r['images']} CamVid training images through pixelwise's dataset, augmentation and a "
            "DataLoader (2 workers, batch 8) with no model, so the figure is the time an epoch waits for data: "
            f"decoding the PNG files every epoch vs the decode-once cache (built once in {r['build_s']:.1f} s, "
            f"not counted); median of {repeats} epochs each.")
    return {"rows": [row(name, f"{r['files_s']:.2f} s/epoch (decode files)", f"{r['cached_s']:.2f} s/epoch (cache)",
                         r["files_s"] / r["cached_s"])], "notes": [note]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="CamVid in the SegNet layout")
    parser.add_argument("--out", default="docs/benchmarks.md", help="the report; the chart goes beside it (.png)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (measured epochs for training)")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repeat: a smoke run")
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), help="run only these rows")
    parser.add_argument("--update", action="store_true",
                        help="with --only: replace those rows and their notes in the existing report, keep the rest")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    common = ["--data", args.data] + (["--quick"] if args.quick else [])
    if not has_data(args.data):
        print(f"note: {args.data} is not a CamVid folder (train/ trainannot/ val/ valannot/); its rows are skipped")
    info = machine_info()
    print(f"{info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}, "
          f"native bf16: {'yes' if info['torch_fast_bf16'] else 'no'}", flush=True)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    steps = {
        "predict": lambda: run_module("bench_predict.py", [*common, "--repeats", str(repeats), "--no-peer"],
                                      "1 predict 352x480"),
        # Apart from row 1's: there pixelwise ran after the torch and onnxruntime rows in the same process and
        # measured 0.94-0.95x the peer, alone 1.01-1.02x (2026-12-02, 2-core EPYC); each runs alone for a user.
        "peer": lambda: run_module("bench_predict.py", [*common, "--repeats", str(repeats), "--peer-only"],
                                   "1m predict fair OpenVINO peer"),
        "process": lambda: run_module("bench_predict_process.py", [*common, "--repeats", str(repeats)],
                                      "1h predict whole process"),
        "int8": lambda: run_module("bench_int8.py", [*common, "--repeats", str(repeats)], "1j predict int8"),
        "train": lambda: run_module("bench_train.py", [*common, "--repeats", str(repeats)], "2 train 256x256"),
        "colors": lambda: colors_row(repeats, args.quick),
        "cache": lambda: cache_row(args.data, repeats, args.quick),
        # ~1 minute a run here: two runs, not --repeats
        "tiled": lambda: run_module("bench_tiled.py", [*common, "--repeats", str(min(repeats, 2))],
                                    "5 tiled predict 4000x4000"),
        "serve": lambda: run_module("bench_serve.py", [*common, "--repeats", str(repeats)], "6 serve"),
        "peak": lambda: run_module("bench_peak.py", common, "peaks"),
    }
    rows: list[dict] = []
    notes: list[str] = []
    others: dict[str, float] = {}
    facts: dict[str, dict] = {}
    for name in args.only:
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        print(f"== {name}", flush=True)
        result = steps[name]()
        cpu1 = cpu_seconds()
        if cpu0 and cpu1:  # CPU time other jobs took during this row, as a share of the machine's
            others[name] = max((cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]), 0.0) / (
                (time.perf_counter() - t0) * (info["cores"] or 1))
        if name in ("colors", "cache"):  # the other rows ran in processes that printed their own
            print_rows(result["rows"])
        print(f"== {name}: {time.perf_counter() - t0:.0f} s (total {time.perf_counter() - start:.0f} s); other jobs "
              f"took {others.get(name, 0):.0%} of the CPU meanwhile", flush=True)
        rows += result["rows"]
        notes += result["notes"]
        facts[name] = result.get("facts", {})
    notes += bound_notes(facts.get("peak", {}), facts.get("predict", {}), facts.get("train", {}))
    total = time.perf_counter() - start
    info["load_end"] = load_average()
    cpu_end = cpu_seconds()
    if cpu_start and cpu_end:
        other_s = (cpu_end[0] - cpu_start[0]) - (cpu_end[1] - cpu_start[1])
        info["others_cpu_share"] = max(other_s, 0.0) / (total * (info["cores"] or 1))
    if others:
        notes.append("Other jobs' share of the machine's CPU time while each row ran (busy time in /proc/stat minus "
                     "the benchmark's own): " + ", ".join(f"{k} {v:.0%}" for k, v in others.items())
                     + ". On 2 cores any other job slows the multi-threaded kernels far more than its share (threads "
                     "wait for each other at every parallel region); side-by-side ratios suffer less than the "
                     "absolute figures.")
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.update and out.is_file():
        command += f" --only {' '.join(args.only)} --update"
        # The report's own note on other jobs is about its full run; this run's share goes in its stamp.
        notes = [n for n in notes if not n.startswith("Other jobs' share")]
        text, rows = update_report(out.read_text(), rows, notes, info, command)
        out.write_text(text)
    else:
        out.write_text(markdown(info, rows, notes, total, command, args.quick))
    chart(rows, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')} in {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
