"""``pixelwise predict`` as a whole process, cold and warm, against the plain smp loop's whole process.

    python benchmarks/bench_predict_process.py [--data ../shared/data/camvid] [--images 48] [--repeats 3] [--quick]

What a user feels is the whole process: start-up, model load, any conversion, decoding, the model, writing
the outputs. Each configuration is a fresh process, timed from its start to its exit, predicting the same
CamVid val images (360x480) at 352x480 and writing a label PNG and an overlay PNG per image at 360x480:

* plain: a script as the tutorials write it (a file beside the results): smp.Unet('resnet34'), its state dict
  loaded, then per image PIL decode, resize, normalise, fp32 eager forward at batch 1 under ``no_grad``,
  argmax, labels resized back (nearest), ``_labels.png`` and a 50% PIL blend ``_overlay.png``;
* pixelwise cold: ``pixelwise predict best.safetensors FILES --out OUT`` with an empty conversion cache and
  no IR beside the checkpoint: the ``auto`` rule decides whether converting pays for this many images;
* pixelwise warm: the same with the IR that ``pixelwise train`` writes beside the checkpoint (``best.xml``).

The networks: smp's U-Net/ResNet-34 for the plain loop, pixelwise's ``unet`` with ``encoder=resnet34`` (the
same encoder and decoder widths) for pixelwise, both seeded random weights (no download). The script also
measures what the ``auto`` rule weighs: the conversion's seconds and the per-image seconds of PyTorch and
OpenVINO, and the break-even job size they give.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import (
    has_data,
    image_bench_parser,
    parse_image_bench_args,
    print_rows,
    row,
    skipped,
    write_json,
)

from pixelwise.data.presets import get_preset
from pixelwise.inference.backends import AUTO_OPENVINO_MIN_IMAGES, write_conversion_beside
from pixelwise.inference.predictor import Predictor
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint

SIZE = (352, 480)
ROW_NAMES = ("1h predict whole process, cold (no IR yet): pixelwise vs plain smp loop process",
             "1i predict whole process, warm (IR written by train): pixelwise vs plain smp loop process")

PLAIN_SCRIPT = '''\
import sys
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
from PIL import Image

weights, out, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
model = smp.Unet("resnet34", encoder_weights=None, classes=11)
model.load_state_dict(torch.load(weights, weights_only=True))
model.eval()
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
palette = np.random.default_rng(0).integers(0, 256, (11, 3), dtype=np.uint8)
out.mkdir(parents=True, exist_ok=True)
with torch.no_grad():
    for path in files:
        image = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.array(image.resize((480, 352), Image.BILINEAR))).permute(2, 0, 1).float() / 255
        labels = model(((x - mean) / std)[None]).argmax(1)[0].numpy().astype(np.uint8)
        labels = Image.fromarray(labels).resize(image.size, Image.NEAREST)
        labels.save(out / (Path(path).stem + "_labels.png"))
        colour = Image.fromarray(palette[np.array(labels)])
        Image.blend(image, colour, 0.5).save(out / (Path(path).stem + "_overlay.png"))
'''


def setup(tmp: Path) -> dict:
    """The plain script and its weights, pixelwise's checkpoint (and a copy with its IR beside it)."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    plain = smp.Unet("resnet34", encoder_weights=None, classes=11).eval()
    torch.save(plain.state_dict(), tmp / "plain.pt")
    (tmp / "plain_predict.py").write_text(PLAIN_SCRIPT)
    torch.manual_seed(0)
    model = create_model("unet", num_classes=11, encoder="resnet34").eval()
    for folder in ("cold", "warm"):
        (tmp / folder).mkdir()
        save_checkpoint(tmp / folder / "best.safetensors", model, CheckpointMeta.for_model(
            model, get_preset("camvid"), input_size=SIZE))
    start = time.perf_counter()
    write_conversion_beside(tmp / "warm" / "best.safetensors")  # what train does when it finishes
    return {"convert_s": time.perf_counter() - start, "params": sum(p.numel() for p in model.parameters())}


def run_process(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process from its start to its exit; a failure stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {result.stderr.strip()[-500:]}")
    return seconds


def per_image_seconds(checkpoint: Path, files: list[Path]) -> dict[str, float]:
    """Seconds an image for PyTorch (precision auto) and OpenVINO (the IR beside it), after a warm-up pass."""
    times = {}
    for backend in ("torch", "openvino"):
        predictor = Predictor(checkpoint, backend=backend)
        for _ in predictor.predict_files(files[:4]):
            pass
        start = time.perf_counter()
        for _ in predictor.predict_files(files):
            pass
        times[backend] = (time.perf_counter() - start) / len(files)
    return times


def measure(data: str, n_images: int, repeats: int) -> dict:
    if not has_data(data):
        return {"rows": [skipped(name, "no data", 1.0) for name in ROW_NAMES], "facts": {}, "notes": []}
    files = sorted((Path(data) / "val").glob("*.png"))[:n_images]
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-process-"))
    try:
        return _measure(files, tmp, repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(files: list[Path], tmp: Path, repeats: int) -> dict:
    facts: dict = {"images": len(files), "repeats": repeats, "cores": os.cpu_count(), **setup(tmp)}
    names = [str(f) for f in files]
    python = [sys.executable]
    commands = {
        "plain": ([*python, str(tmp / "plain_predict.py"), str(tmp / "plain.pt"), str(tmp / "out"), *names], {}),
        "cold": ([*python, "-m", "pixelwise", "predict", str(tmp / "cold" / "best.safetensors"), *names, "--out",
                  str(tmp / "out"), "--overwrite"], {}),
        "warm": ([*python, "-m", "pixelwise", "predict", str(tmp / "warm" / "best.safetensors"), *names, "--out",
                  str(tmp / "out"), "--overwrite"], {}),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(repeats):  # in turn within each repeat, so a slow moment hurts all alike
        for name, (command, env) in commands.items():
            cache = tmp / f"cache-{name}-{r}"  # cold: every repeat starts with no conversion cached
            times[name].append(run_process(command, {**env, "PIXELWISE_CACHE": str(cache)}))
        print(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    seconds = {name: float(np.median(t)) for name, t in times.items()}
    facts.update(seconds=seconds, per_image_s=per_image_seconds(tmp / "warm" / "best.safetensors", files))
    gain = facts["per_image_s"]["torch"] - facts["per_image_s"]["openvino"]
    facts["break_even_images"] = facts["convert_s"] / gain if gain > 0 else float("inf")
    rows = [row(ROW_NAMES[0], f"{seconds['plain']:.1f} s (plain smp loop process)",
                f"{seconds['cold']:.1f} s (pixelwise predict, no IR)", seconds["plain"] / seconds["cold"], 1.0),
            row(ROW_NAMES[1], f"{seconds['plain']:.1f} s (plain smp loop process)",
                f"{seconds['warm']:.1f} s (pixelwise predict, IR ready)", seconds["plain"] / seconds["warm"], 1.0)]
    return {"rows": rows, "facts": facts, "notes": [note(facts)]}


def note(f: dict) -> str:
    t, s = f["per_image_s"], f["seconds"]
    cold_rule = "converts first" if f["images"] >= AUTO_OPENVINO_MIN_IMAGES else "stays in PyTorch"
    return (f"Rows 1h-1i: {f['images']} CamVid val images, each configuration a fresh process timed from "
            f"start to exit (median of {f['repeats']}), writing a label PNG and an overlay PNG per image. "
            "Plain: smp.Unet('resnet34') in a tutorial-style script (PIL, eager fp32, batch 1); pixelwise: "
            "`pixelwise predict` with every default on its own U-Net/ResNet-34 "
            f"({f['params'] / 1e6:.1f}M parameters, seeded random weights). Cold, `auto` {cold_rule} at "
            f"{f['images']} images (the rule converts from {AUTO_OPENVINO_MIN_IMAGES}); warm, it runs the IR "
            f"`pixelwise train` writes beside the checkpoint. Writing that IR took {f['convert_s']:.1f} s (what "
            f"train adds to a run); per image, PyTorch took {t['torch'] * 1e3:.0f} ms and OpenVINO "
            f"{t['openvino'] * 1e3:.0f} ms (`predict_files`, batch 4), so converting pays from "
            f"{f['break_even_images']:.0f} images on this machine. Seconds: plain {s['plain']:.1f}, cold "
            f"{s['cold']:.1f}, warm {s['warm']:.1f}.")


def main(argv: list[str] | None = None) -> int:
    args = parse_image_bench_args(image_bench_parser(__doc__, images=48), argv)
    result = measure(args.data, args.images, args.repeats)
    print_rows(result["rows"])
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
