"""CamVid one-variable comparisons: the 60-minute recipe with one thing changed, each run alone on the machine.

Each lever is a base recipe (``configs/camvid.yaml`` unless ``--base`` names another) with a few keys
overridden. The script trains it (``pixelwise train``, the lever's own run folder), scores the best
checkpoint on val plainly and with flip TTA (``pixelwise evaluate``), and appends one JSON line to
``RUNS/results.jsonl``: the CPU and its instructions, epochs, wall time, val mIoU and per-class IoU, TTA mIoU.
Nothing else may run on the machine meanwhile: on 2 cores another job slows training far more than its
share, and a run that got fewer epochs scores lower for that reason alone.

    python benchmarks/camvid_levers.py --list
    python benchmarks/camvid_levers.py native-crops lite1 --runs runs/levers      # one after the other
    python benchmarks/camvid_levers.py --table runs/levers/results.jsonl           # the README's table
    python benchmarks/camvid_levers.py --predict-scales baseline lovasz             # trained runs, predicted larger

Compare levers only within one machine type (the ``cpu`` field): the same recipe trained 44 epochs on one
2-core CPU and 75 on another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pixelwise.core.machine import machine_facts

BASE = "configs/camvid.yaml"
# The recipe's first 3/4 (63 of Lovasz's 84 epochs) at 240x320, where an epoch is cheap and shows whole
# streets, then the last 1/4 of its time at the native 360x480, 2.25x the pixels per frame (9 epochs), where
# a pole is 2-3 pixels wide instead of 1-2; predicted at the size it was fine-tuned at (predict_scale 1).
# Epochs, not minutes, so the comparison with the one-stage levers holds on any host.
# Measured before configs/camvid.yaml took it up as its final_stage; each stage here is a run without one.
LOW_RES_THEN_NATIVE = [{"epochs": 63, "time_budget": None, "final_stage": None},
                       {"img_size": "360x480", "epochs": 9, "time_budget": None, "lr_scale": 0.5, "predict_scale": 1.0,
                        "final_stage": None}]
# name -> (what changes, recipe keys overridden). "augment" overrides are merged into the base's augment. A list
# of overrides is a run in stages, each starting from the previous stage's best weights (init_from).
LEVERS: dict[str, tuple[str, dict | list[dict]]] = {
    "baseline": ("configs/camvid.yaml as it is", {}),
    "native-crops": ("240x320 crops of the native 360x480 frames instead of frames resized to 240x320",
                     {"img_size": "none", "crop_size": "240x320"}),
    "native-full": ("whole frames at the native 360x480", {"img_size": "360x480"}),
    "lite1": ("encoder EfficientNet-Lite1 (ImageNet)", {"encoder": "efficientnet_lite1"}),
    "lite2": ("encoder EfficientNet-Lite2 (ImageNet)", {"encoder": "efficientnet_lite2"}),
    "lovasz": ("loss CE + Lovasz-softmax", {"loss": "ce+lovasz"}),
    "edge-ce": ("the CE of CE + Lovasz counts the pixels within 2 of a label change 3x",
                {"loss": "edge_ce+lovasz"}),
    # Thin things get more pixels where the model is fed the frame enlarged (predict_scale); past the zoom the
    # augmentation showed it (1.5) the enlarged frame scored less (README), so both go up together here.
    "zoom2": ("zoom augmentation up to 2x (not 1.5x) and frames predicted enlarged 2x (not 1.5x)",
              {"augment": {"scale": [0.75, 2.0]}, "predict_scale": 2.0}),
    # A timm encoder's shallowest feature is at stride 2, where a pole 1-2 pixels wide is already blurred away.
    "full-res-skip": ("a full-resolution skip (two 3x3 convs, 16 channels, on the input) into the decoder's last block",
                      {"model_kwargs": {"full_res_skip": 16}}),
    # OHEM replaces class balancing (as in PSPNet/BiSeNet training code): on top of median-frequency weights it
    # kept mostly the up-weighted rare-class pixels, the model painted rare classes everywhere, and at epoch 29
    # of 55 it stood at 34.2% val mIoU (pixel accuracy 51%) against the baseline's 58.9%, so it was stopped.
    "ohem": ("loss OHEM CE (the hardest 25% of pixels) instead of class-weighted CE",
             {"loss": "ohem", "class_weights": None}),
    "rare-crops": ("half the crops centred on a rare class", {"augment": {"rare_class_crops": 0.5}}),
    "ema": ("validate and keep an EMA of the weights (decay 0.999)", {"ema": 0.999}),
    "low-res-then-native": ("63 epochs at 240x320, then 9 on whole native 360x480 frames (lr / 2), predicted at "
                            "360x480",
                            LOW_RES_THEN_NATIVE),
    # The same in batches of 4 for the native stage: a batch of 8 native frames misses the caches (the step ran
    # 4.3 images/s against 6.4 in batches of 4 on a 2-core EPYC), which made that stage 26 minutes, not 12.
    "low-res-then-native-b4": ("low-res-then-native with the native stage in batches of 4 (not 8)",
                               [LOW_RES_THEN_NATIVE[0], {**LOW_RES_THEN_NATIVE[1], "batch_size": 4}]),
}


def recipe_for(base: str, overrides: dict, data: str | None) -> dict:
    """The base recipe with ``overrides`` applied (``lr_scale`` multiplies the base's lr)."""
    recipe = yaml.safe_load(Path(base).read_text())
    for key, value in overrides.items():
        if key == "augment":
            recipe["augment"] = {**recipe.get("augment", {}), **value}
        elif key == "lr_scale":
            recipe["lr"] = recipe["lr"] * value
        else:
            recipe[key] = value
    if data:
        recipe["data"] = data
    return recipe


def train_stages(lever: str, base: str, out: Path, data: str | None, epochs: int | None = None,
                 time_cap: str | None = None) -> dict:
    """Train the lever (each stage from the previous one's best weights); the last stage's recipe.
    ``epochs`` (one-stage levers): that many epochs instead of the time budget, stopped at ``time_cap``."""
    overrides = LEVERS[lever][1]
    stages = overrides if isinstance(overrides, list) else [overrides]
    init = None
    for k, stage in enumerate(stages, 1):
        recipe = recipe_for(base, {**stage, **({"init_from": init} if init else {})}, data)
        if epochs:
            recipe["epochs"], recipe["time_budget"] = epochs, time_cap
        # Earlier stages beside the run's folder, not in it: train refuses an --out that already holds files.
        stage_out = out if k == len(stages) else out.with_name(f"{out.name}-stage{k}")
        if (stage_out / "report.html").is_file():  # written when a run ends: a stage done before a crash
            print(f"{stage_out}: trained already, kept")
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                yaml.safe_dump(recipe, f)
            subprocess.run(["pixelwise", "train", "--config", f.name, "--out", str(stage_out), "--no-progress"],
                           check=True)
        init = str(stage_out / "best.safetensors")
    return recipe


def epochs_and_minutes(out: Path) -> tuple[int, float]:
    """Epochs trained and training minutes (metrics.csv's last elapsed_s), over every stage of a run."""
    epochs, minutes = 0, 0.0
    for metrics in sorted(out.parent.glob(f"{out.name}-stage*/metrics.csv")) + [out / "metrics.csv"]:
        rows = [line.split(",") for line in metrics.read_text().splitlines()[1:] if line.strip()]
        epochs, minutes = epochs + len(rows), minutes + float(rows[-1][-1]) / 60
    return epochs, round(minutes, 1)


def run_lever(lever: str, base: str, runs: Path, data: str | None, score_only: bool = False,
              epochs: int | None = None, time_cap: str | None = None) -> dict:
    """Train the lever's recipe (unless ``score_only``: its run folder is already trained), score it plainly
    and with flip TTA; the result line."""
    out = runs / lever
    last_stage = LEVERS[lever][1][-1] if isinstance(LEVERS[lever][1], list) else LEVERS[lever][1]
    recipe = recipe_for(base, last_stage, data) if score_only else train_stages(lever, base, out, data, epochs,
                                                                                           time_cap)
    scores = {}
    for name, extra in (("plain", []), ("tta_flip", ["--tta-flip"])):
        subprocess.run(["pixelwise", "evaluate", str(out / "best.safetensors"), "--data", recipe["data"],
                        "--split", "val", *extra], check=True, stdout=subprocess.DEVNULL)
        scores[name] = json.loads((out / f"eval_val{'_tta' if extra else ''}.json").read_text())
    epochs, minutes = epochs_and_minutes(out)
    return {"lever": lever, "change": LEVERS[lever][0], "base": base, "recipe": recipe, "machine": machine_facts(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "epochs": epochs, "train_min": minutes,
            "budget": recipe.get("time_budget") if not recipe.get("epochs") else f"{recipe['epochs']} epochs",
            "val": scores["plain"], "val_tta_flip": scores["tta_flip"]}


def table(results: Path) -> str:
    """Markdown rows (lever, change, CPU (or the GPU it trained on), epochs, val mIoU, pole/sign/pedestrian IoU,
    + flip TTA)."""
    lines = ["| lever | what changes | CPU | epochs | val mIoU | pole | sign | pedestrian | + flip TTA |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for line in results.read_text().splitlines():
        r = json.loads(line)
        iou = r["val"]["per_class"]
        m = r["machine"]
        bf16 = "AMX" if m["amx"] else "AVX-512-BF16" if m["avx512_bf16"] else "no bf16"
        cpu = m.get("gpu") or f"{m['cores']}-core {bf16}"
        lines.append(f"| {r['lever']} | {r['change']} | {cpu} | {r['epochs']} | {100 * r['val']['miou']:.1f} | "
                     + " | ".join(f"{100 * iou[c]['iou']:.1f}" for c in ("pole", "sign", "pedestrian"))
                     + f" | {100 * r['val_tta_flip']['miou']:.1f} |")
    return "\n".join(lines)


# How a trained run is fed at prediction: (row name, evaluate options). Scale 1 is how training validated it.
PREDICTION_WAYS = (("as validated (240x320)", ["--predict-scale", "1"]),
                   ("sharp native frame (360x480)", ["--predict-scale", "1", "--input-size", "360x480"]),
                   ("240x320 enlarged 1.5x", ["--predict-scale", "1.5"]),
                   ("240x320 enlarged 1.5x + flip", ["--predict-scale", "1.5", "--tta-flip"]),
                   ("240x320 enlarged 2x", ["--predict-scale", "2"]))


def prediction_scale_table(runs: Path, levers: list[str], data: str) -> str:
    """Markdown rows: each run's best checkpoint scored on val in each of PREDICTION_WAYS (no training)."""
    lines = ["| run | predicted as | val mIoU | pole | sign | pedestrian |", "| --- | --- | --- | --- | --- | --- |"]
    for lever in levers:
        for name, options in PREDICTION_WAYS:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "eval.json"
                subprocess.run(["pixelwise", "evaluate", str(runs / lever / "best.safetensors"), "--data", data,
                                "--json", str(path), *options], check=True, stdout=subprocess.DEVNULL)
                m = json.loads(path.read_text())
            iou = m["per_class"]
            lines.append(f"| {lever} | {name} | {100 * m['miou']:.1f} | "
                         + " | ".join(f"{100 * iou[c]['iou']:.1f}" for c in ("pole", "sign", "pedestrian")) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("levers", nargs="*")
    parser.add_argument("--base", default=BASE, help="the recipe the levers change")
    parser.add_argument("--runs", type=Path, default=Path("runs/levers"))
    parser.add_argument("--data", help="CamVid folder (default: the recipe's)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--epochs", type=int, help=(
        "train this many epochs, not for the recipe's time budget: the host's speed varies (a 2-core VM ran the "
        "same step 30%% slower an hour later), so equal epochs compare levers of equal step cost more fairly"))
    parser.add_argument("--time-cap", help="with --epochs: stop anyway after this long, e.g. 75m")
    parser.add_argument("--score-only", action="store_true", help="score runs already trained in RUNS/LEVER")
    parser.add_argument("--table", type=Path, help="print the markdown table of a results.jsonl")
    parser.add_argument("--predict-scales", action="store_true",
                        help="score the named levers' trained runs fed larger or sharper images (no training)")
    args = parser.parse_args()
    if args.list:
        print("\n".join(f"{name}: {change}" for name, (change, _) in LEVERS.items()))
        return 0
    if args.table:
        print(table(args.table))
        return 0
    unknown = [lever for lever in args.levers if lever not in LEVERS]
    if unknown:
        print(f"error: unknown lever(s) {', '.join(unknown)}; --list shows them", file=sys.stderr)
        return 2
    if args.predict_scales:
        data = args.data or yaml.safe_load(Path(args.base).read_text())["data"]
        print(prediction_scale_table(args.runs, args.levers, data))
        return 0
    args.runs.mkdir(parents=True, exist_ok=True)
    for lever in args.levers:
        result = run_lever(lever, args.base, args.runs, args.data, args.score_only, args.epochs, args.time_cap)
        with (args.runs / "results.jsonl").open("a") as f:
            f.write(json.dumps(result) + "\n")
        print(f"{lever}: val mIoU {100 * result['val']['miou']:.2f}%, flip TTA "
              f"{100 * result['val_tta_flip']['miou']:.2f}%, {result['epochs']} epochs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
