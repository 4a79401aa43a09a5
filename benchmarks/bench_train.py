"""Training images/s at 256x256, batch 8, on CamVid: pixelwise.train against a plain smp + PyTorch fp32 loop.

    python benchmarks/bench_train.py [--data ../shared/data/camvid] [--images 24] [--repeats 3] [--quick]

Both train the same design, a U-Net decoder over a ResNet-34 encoder with random initial weights, with
cross-entropy (void ignored), AdamW (lr 1e-3, weight decay 1e-4), batch 8, on the
same first ``--images`` CamVid training images:

* baseline: smp.Unet('resnet34') in fp32, fed by a plain torch Dataset that decodes the PNGs with PIL
  every time and takes a random 256x256 crop, in 2 DataLoader workers;
* pixelwise: ``pixelwise.train(TrainConfig(model="unet", encoder="resnet34", img_size=256, ...))`` with its
  defaults otherwise (decode-once cache, precision auto, channels_last when bf16, its augmentation, grad
  clipping, data workers as ``resolve_workers`` picks: none on a 2-core CPU), on a folder holding those
  images (symlinks) and 4 validation images.

Throughput is measured the way pixelwise's trainer reports it (``images_per_s`` in metrics.csv): images
of an epoch over the seconds from the start of its DataLoader iteration to its last optimizer step, so it
excludes the cache build and validation and includes the workers' start. The two sides alternate in
``--repeats`` rounds of 2 epochs each (the first a warm-up); the figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import DEFAULT_DATA, has_data, print_rows, row, skipped, write_json
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from pixelwise.core.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelwise.core.device import resolve_workers
from pixelwise.models import create_model
from pixelwise.training.config import TrainConfig

CROP, BATCH, WORKERS, CLASSES, VOID = 256, 8, 2, 11, 11
ROW_NAME = "2 train 256x256 batch 8: pixelwise defaults vs plain smp fp32 loop"


class PlainCamVid(Dataset):
    """The tutorials' dataset: PIL decode of image and mask on every access, a random crop, normalisation."""

    def __init__(self, images: list[Path], masks: Path) -> None:
        self.images, self.masks = images, masks
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = np.array(Image.open(self.images[i]).convert("RGB"))
        mask = np.array(Image.open(self.masks / self.images[i].name))
        y = np.random.randint(0, image.shape[0] - CROP + 1)
        x = np.random.randint(0, image.shape[1] - CROP + 1)
        image, mask = image[y:y + CROP, x:x + CROP], mask[y:y + CROP, x:x + CROP]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
        return (tensor - self.mean) / self.std, torch.from_numpy(mask.astype(np.int64))


def plain_training(images: list[Path], masks: Path, epochs: int) -> tuple[list[float], int]:
    """Images/s of each epoch of the plain loop, and the model's parameter count."""
    model = smp_model()
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=VOID)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = DataLoader(PlainCamVid(images, masks), batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                        drop_last=True)
    model.train()
    rates = []
    for epoch in range(epochs):
        start, seen = time.monotonic(), 0
        for x, y in loader:
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seen += x.shape[0]
        rates.append(seen / (time.monotonic() - start))
        print(f"    plain epoch {epoch + 1}/{epochs}: {rates[-1]:.2f} img/s (loss {loss.item():.3f})", flush=True)
    return rates, sum(p.numel() for p in model.parameters())


def subset_folder(data: Path, root: Path, n_train: int, n_val: int) -> Path:
    """A CamVid-layout folder of symlinks to the first ``n_train`` / ``n_val`` images and their masks."""
    for split, n in (("train", n_train), ("val", n_val)):
        for folder in (split, f"{split}annot"):
            (root / folder).mkdir(parents=True)
        for image in sorted((data / split).glob("*.png"))[:n]:
            (root / split / image.name).symlink_to(image.resolve())
            (root / f"{split}annot" / image.name).symlink_to((data / f"{split}annot" / image.name).resolve())
    return root


def pixelwise_training(data: Path, out: Path, epochs: int, **options) -> tuple[list[float], dict]:
    """Images/s of each epoch as pixelwise's trainer measured them, and what the run said about itself."""
    import pixelwise

    config = TrainConfig(data=str(data), format="camvid", img_size=(CROP, CROP), model="unet", encoder="resnet34",
                         batch_size=BATCH, epochs=epochs, out=str(out), progress=False,
                         num_preview=0, **options)
    start = time.perf_counter()
    result = pixelwise.train(config)
    rates = [float(r["images_per_s"]) for r in result.history]
    for k, rate in enumerate(rates):
        print(f"    pixelwise epoch {k + 1}/{epochs}: {rate:.2f} img/s", flush=True)
    from pixelwise.core.device import resolve_device, resolve_precision

    return rates, {"precision": resolve_precision(config.precision, resolve_device(config.device)),
                   "seconds": time.perf_counter() - start}


def smp_model() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    return smp.Unet("resnet34", encoder_weights=None, classes=CLASSES)


def forward_gflops(model: torch.nn.Module) -> float:
    """Forward GFLOPs per 256x256 image (PyTorch's FLOP counter): how much arithmetic each side's model does."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, CROP, CROP))
    return counter.get_total_flops() / 1e9


def compile_option() -> bool:
    return "compile" in TrainConfig.model_fields


def measure(data: str, n_images: int, repeats: int, with_compile: bool = True) -> dict:
    if not has_data(data):
        return {"rows": [skipped(ROW_NAME, "no data", 4.0)], "facts": {}, "notes": []}
    data_path = Path(data)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-train-"))
    os.environ["PIXELWISE_CACHE"] = str(tmp / "cache")  # the decode-once cache, built fresh for this run
    plain: list[float] = []
    ours: list[float] = []
    try:
        images = sorted((data_path / "train").glob("*.png"))[:n_images]
        subset = subset_folder(data_path, tmp / "camvid", n_images, 4)
        # Rounds: each side trains 2 epochs from the same seed (the first a warm-up) in turn, so that a
        # busy moment on the machine lands on both sides rather than on whichever ran then.
        for r in range(repeats):
            print(f"  round {r + 1}/{repeats}", flush=True)
            rates, smp_params = plain_training(images, data_path / "trainannot", 2)
            plain.append(rates[1])
            rates, info = pixelwise_training(subset, tmp / f"run{r}", 2)
            ours.append(rates[1])
        compiled = None
        if with_compile and compile_option():
            compiled, _ = pixelwise_training(subset, tmp / "run-compile", 2, compile=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    pw_model = create_model("unet", num_classes=CLASSES, encoder="resnet34")
    pw_params = sum(p.numel() for p in pw_model.parameters())
    gflops = {"smp": forward_gflops(smp_model()), "pixelwise": forward_gflops(pw_model)}
    base, pw = statistics.median(plain), statistics.median(ours)
    facts = {"images": len(images), "repeats": repeats, "plain_rates": plain, "pixelwise_rates": ours,
             "smp_params": smp_params, "pixelwise_params": pw_params, "gflops": gflops, "precision": info["precision"],
             "compile_option": compile_option(), "compiled_rates": compiled, "threads": torch.get_num_threads()}
    rows = [row(ROW_NAME, f"{base:.2f} img/s (smp, PIL every epoch, fp32)",
                f"{pw:.2f} img/s (cache, precision {info['precision']})", pw / base, 4.0)]
    if compiled:
        c = statistics.median(compiled[1:])
        rows.append(row("2b train 256x256 batch 8: pixelwise + torch.compile vs plain smp fp32 loop",
                        f"{base:.2f} img/s", f"{c:.2f} img/s (compile=True)", c / base))
    return {"rows": rows, "facts": facts, "notes": notes(facts)}


def notes(f: dict) -> list[str]:
    text = [
        f"Row 2: {f['images']} CamVid training images ({f['images'] // BATCH} step(s) of batch 8 per epoch), "
        f"{f['repeats']} rounds of plain then pixelwise, each training 2 epochs from the same initial weights; the "
        "first epoch of each is a warm-up and the figure is the median over rounds of the second. "
        "Throughput is pixelwise's own measure (`images_per_s` in metrics.csv): images over the time from the start of "
        "the epoch's DataLoader iteration to its last step, the same clock for the plain loop, so neither includes "
        "the cache build or validation. The baseline is smp.Unet('resnet34') "
        f"({f['smp_params'] / 1e6:.2f}M parameters); pixelwise trains its own `unet` with `encoder='resnet34'` (timm "
        f"ResNet-34 features, the same U-Net decoder design, {f['pixelwise_params'] / 1e6:.2f}M parameters); forward "
        f"arithmetic per 256x256 image: smp {f['gflops']['smp']:.1f}, pixelwise {f['gflops']['pixelwise']:.1f} GFLOPs. "
        f"Both: cross-entropy, AdamW; the baseline loads data in {WORKERS} DataLoader workers, pixelwise in "
        f"{resolve_workers(None, torch.device('cpu'))} (its default here: `resolve_workers`). pixelwise adds its "
        "default augmentation (scale, flip, colour jitter, "
        "noise) and gradient clipping, which cost it time, not the baseline.",
        f"pixelwise's precision `auto` resolved to **{f['precision']}** here" + (
            " (the CPU has AMX or AVX-512-BF16): bf16 autocast with channels_last, against the baseline's fp32. "
            if f["precision"] == "bf16" else
            ". On a CPU with AMX or AVX-512-BF16 it is bf16 autocast with channels_last, which is where the 4x "
            "target comes from; without them both sides do the same fp32 convolutions, and pixelwise gains only "
            "what the decode-once cache takes off the data workers, which on "
            f"{os.cpu_count()} cores compete with the model for the same cores. ") + "Measured epochs, per round: "
        f"plain {', '.join(f'{r:.2f}' for r in f['plain_rates'])}; "
        f"pixelwise {', '.join(f'{r:.2f}' for r in f['pixelwise_rates'])} img/s.",
    ]
    if not f["compile_option"]:
        text.append("TrainConfig has no `compile` option in this version, so there is no torch.compile row.")
    elif f["compiled_rates"]:
        text.append("Row 2b: pixelwise with `compile=True`, one run of 2 epochs after the rounds (epoch 1 compiles; "
                    "the figure is epoch 2), against the rounds' median baseline: "
                    f"{', '.join(f'{r:.2f}' for r in f['compiled_rates'])} img/s per epoch.")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (2 epochs per side each)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--quick", action="store_true", help="8 images, 1 measured epoch, no compile: a smoke run")
    parser.add_argument("--json", help="also write the result here (for run_all.py)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = 8, 1
    result = measure(args.data, args.images, args.repeats, not (args.no_compile or args.quick))
    print_rows(result["rows"])
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
