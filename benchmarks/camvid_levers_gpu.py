"""CamVid levers side by side on one GPU, each at the epochs it would get in the CPU recipe's hour.

``camvid_levers.py`` trains one lever at a time on the 2-core CPU the recipe is for: about 45 minutes each.
On a GPU the same recipe trains in a few minutes, and several runs share one card, so a whole sweep of
levers fits in one short lease. What transfers to the CPU is *quality at equal CPU time*, not speed, so
each lever here trains for the epochs its step cost allows in the CPU budget (``EPOCHS``: 55 for the
baseline, fewer for a costlier encoder or loss, as measured on the CPU with
``pixelwise.training.speed.measure_training_speed``). A winner here must still be confirmed on the CPU.

    python benchmarks/camvid_levers_gpu.py --data CAMVID --runs runs/gpu-levers --deadline 480 \\
        baseline baseline-seed1 ema lite1 lite2 lovasz

Each finished lever appends one JSON line to ``RUNS/results.jsonl`` (the same fields as camvid_levers.py);
``camvid_levers.py --table RUNS/results.jsonl`` prints them. Runs still going at ``--deadline`` seconds
are stopped and recorded as unfinished.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from camvid_levers import BASE, LEVERS, recipe_for  # noqa: E402

from pixelwise.core.machine import machine_facts  # noqa: E402

# CPU step cost relative to the Lite0 baseline, measured on a 2-core Xeon (AMX, bf16) at 240x320, batch 8:
# Lite1 0.85x and Lite2 0.80x the baseline's images/s; CE + Lovasz adds 0.38 s to a 0.68 s step (the sort).
# Whole 360x480 frames hold 2.25x the pixels of 240x320 ones, so 24 epochs.
EPOCHS = {"lite1": 48, "lite2": 45, "lovasz": 35, "lite2-ema": 45, "lovasz-full": 55, "native-full": 24}
EXTRA_LEVERS = {
    "baseline-seed1": ("configs/camvid.yaml with seed 1 (how much a second seed moves)", {"seed": 1}),
    "lite2-ema": ("encoder EfficientNet-Lite2 and an EMA of the weights",
                  {"encoder": "efficientnet_lite2", "ema": 0.999}),
    "lovasz-full": ("loss CE + Lovasz-softmax, at the baseline's 55 epochs (its quality if it cost nothing)",
                    {"loss": "ce+lovasz"}),
}


def start(lever: str, overrides: dict, data: str, runs: Path, workers: int,
          max_epochs: int | None = None) -> subprocess.Popen:
    """Start training ``lever`` (its own run folder, its own log); the process."""
    recipe = recipe_for(BASE, overrides, data)
    epochs = min(EPOCHS.get(lever, 55), max_epochs or 1000)
    recipe.update(epochs=epochs, time_budget=None, workers=workers)
    out = runs / lever
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{lever}.yaml").write_text(yaml.safe_dump(recipe))
    log = (runs / f"{lever}.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "pixelwise", "train", "--config", str(runs / f"{lever}.yaml"),
                             "--out", str(out), "--no-progress", "--no-openvino"], stdout=log, stderr=subprocess.STDOUT)


def score(lever: str, change: str, data: str, runs: Path) -> dict:
    """Evaluate the lever's best checkpoint plainly and with flip TTA; the result line."""
    out = runs / lever
    scores = {}
    for name, extra in (("plain", []), ("tta_flip", ["--tta-flip"])):
        subprocess.run([sys.executable, "-m", "pixelwise", "evaluate", str(out / "best.safetensors"), "--data",
                        data, "--split", "val", *extra], check=True, stdout=subprocess.DEVNULL)
        scores[name] = json.loads((out / f"eval_val{'_tta' if extra else ''}.json").read_text())
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:] if line.strip()]
    recipe = yaml.safe_load((runs / f"{lever}.yaml").read_text())
    return {"lever": lever, "change": change, "base": BASE, "recipe": recipe, "machine": machine_facts(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "epochs": len(rows),
            "train_min": round(float(rows[-1][-1]) / 60, 1), "budget": f"{recipe['epochs']} epochs",
            "val": scores["plain"], "val_tta_flip": scores["tta_flip"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("levers", nargs="+")
    parser.add_argument("--data", required=True, help="CamVid folder")
    parser.add_argument("--runs", type=Path, default=Path("runs/gpu-levers"))
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes per run")
    parser.add_argument("--max-epochs", type=int, help="at most this many epochs (a quick check of the script)")
    parser.add_argument("--deadline", type=float, default=480, help="seconds; stop what is still training")
    args = parser.parse_args()
    known = {**LEVERS, **EXTRA_LEVERS}
    unknown = [lever for lever in args.levers if lever not in known]
    if unknown:
        print(f"error: unknown lever(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    began = time.monotonic()
    running = {lever: start(lever, known[lever][1], args.data, args.runs, args.workers,
                                   args.max_epochs) for lever in args.levers}
    results = args.runs / "results.jsonl"
    while running and time.monotonic() - began < args.deadline:
        time.sleep(2)
        for lever, process in list(running.items()):
            if process.poll() is None:
                continue
            del running[lever]
            if process.returncode != 0:
                print(f"{lever}: training failed (exit {process.returncode}); see RUNS/{lever}.log", flush=True)
                continue
            result = score(lever, known[lever][0], args.data, args.runs)
            with results.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(f"{lever}: val mIoU {100 * result['val']['miou']:.2f}%, flip TTA "
                  f"{100 * result['val_tta_flip']['miou']:.2f}%, {result['epochs']} epochs, "
                  f"{time.monotonic() - began:.0f} s", flush=True)
    for lever, process in running.items():
        process.kill()
        rows = (args.runs / lever / "metrics.csv").read_text().splitlines() if (args.runs / lever /
                                                                               "metrics.csv").exists() else []
        print(f"{lever}: still training at the deadline, stopped; metrics.csv: {rows[:1] + rows[-2:]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
