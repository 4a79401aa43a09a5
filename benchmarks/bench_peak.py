"""What this CPU can do at best: measured arithmetic peaks, the FLOPs each row needs, a training-step profile.

    python benchmarks/bench_peak.py [--quick] [--json PATH]

A speed-ratio target is reachable only if the arithmetic it implies fits the CPU: predicting 7x faster than a
plain fp32 loop means doing that network's FLOPs 7x faster. This script measures

* GFLOP/s of a large matrix multiply (``torch.mm``, 2048x2048) in fp32 and in bf16: the best case for any
  runtime, since oneDNN and OpenVINO turn convolutions into the same kind of kernels;
* fp32 GFLOP/s of one 3x3 convolution of a U-Net's middle stage (channels_last, oneDNN);
* FLOPs per image of the benchmark network, smp.Unet('resnet34') (torch's FlopCounterMode, a multiply-add
  counted as 2): the forward at 352x480 (row 1) and forward + backward at 256x256 (row 2);
* one training step of pixelwise's ``unet`` over ResNet-34 at 256x256, batch 8, in its ``auto`` precision:
  the wall time of its forward, loss, backward and optimizer step, and the share of the operators' CPU
  time spent in convolutions, batch norm, activations, dtype/layout copies and the rest (torch.profiler).

``bound_notes`` (used by run_all.py) sets these against rows 1 and 2.

>>> round(matmul_gflops(64, torch.float32, repeats=1)) > 0
True
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from bench_common import median_time, write_json
from torch.utils.flop_counter import FlopCounterMode

from pixelwise.core.device import autocast, cpu_has_fast_bf16, resolve_precision
from pixelwise.models import create_model

PREDICT_SIZE, TRAIN_SIZE, BATCH, CLASSES = (352, 480), (256, 256), 8, 11


def matmul_gflops(n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matrix multiply (2 n^3 FLOPs), the fastest of ``repeats`` after a warm-up.

    The fastest, not the median: a peak is what the CPU can do at best, and on a shared host the bf16
    figure swung 575-1967 GFLOP/s between calls seconds apart (other tenants on the matrix units).
    """
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    return 2 * n**3 / min(median_time(lambda: torch.mm(a, b), 1) for _ in range(repeats)) / 1e9


def conv_gflops(repeats: int = 5) -> float:
    """fp32 GFLOP/s of a 3x3, 128 -> 128 channel convolution on 4 x 88x120 maps (channels_last)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 128, 88, 120).to(memory_format=torch.channels_last)
    flops = 2 * 128 * 128 * 9 * 4 * 88 * 120
    with torch.no_grad():
        conv(x)
        return flops / median_time(lambda: conv(x), repeats) / 1e9


def smp_unet() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet34", encoder_weights=None, classes=CLASSES)


def gflops_per_image(model: torch.nn.Module, size: tuple[int, int], backward: bool) -> float:
    """FLOPs of one image through ``model`` (forward, or forward + backward), in GFLOP."""
    x = torch.randn(2, 3, *size)  # batch 2: batch norm in training mode needs more than one value
    model.train(backward)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2 / 1e9


def family(op: str) -> str:
    """The operator family of a profiler event name (for the step profile)."""
    name = op.lower()
    for key, words in (("convolution", ("conv",)), ("batch norm", ("batch_norm",)),
                       ("activation", ("relu", "threshold", "silu", "sigmoid", "hardtanh")),
                       ("loss", ("nll", "log_softmax", "cross_entropy")),
                       ("optimizer", ("adam", "foreach", "lerp", "addcdiv", "sqrt")),
                       ("dtype/layout copies", ("copy", "to_copy", "clone", "contiguous"))):
        if any(w in name for w in words):
            return key
    return "other"


def step_profile(steps: int) -> dict:
    """Phase times and operator-family shares of pixelwise's training step in its ``auto`` precision.

    U-Net/ResNet-34, 256x256, batch 8: the trainer's own recipe (bf16 autocast + channels_last where the
    CPU runs bf16 natively, fp32 elsewhere), so the profile shows where pixelwise's step spends its time.
    """
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    torch.manual_seed(0)
    model = create_model("unet", num_classes=CLASSES, encoder="resnet34").train()
    x, y = torch.randn(BATCH, 3, *TRAIN_SIZE), torch.randint(0, CLASSES, (BATCH, *TRAIN_SIZE))
    if precision == "bf16":
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)  # as the trainer
    phases: dict[str, list[float]] = {"forward": [], "loss": [], "backward": [], "optimizer": []}

    def step(record: bool) -> None:
        t0 = time.perf_counter()
        with autocast(device, precision):
            logits = model(x)
            t1 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        if record:
            for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                phases[name].append(seconds)

    step(False)  # warm-up: oneDNN kernel selection, optimizer state
    for _ in range(steps):
        step(True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step(False)
    shares: dict[str, float] = {}
    for event in prof.key_averages():
        shares[family(event.key)] = shares.get(family(event.key), 0.0) + event.self_cpu_time_total
    total = sum(shares.values()) or 1.0
    times = {name: statistics.median(v) for name, v in phases.items()}
    return {"precision": precision, "phase_s": times, "step_s": sum(times.values()),
            "op_share": {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}}


def measure(quick: bool = False) -> dict:
    repeats = 1 if quick else 20
    facts = {"threads": torch.get_num_threads(), "native_bf16": cpu_has_fast_bf16(),
             "mm_fp32": matmul_gflops(512 if quick else 2048, torch.float32, repeats),
             "mm_bf16": matmul_gflops(512 if quick else 2048, torch.bfloat16, repeats),
             "conv_fp32": conv_gflops(repeats)}
    try:
        net = smp_unet()
        facts["predict_gflop"] = gflops_per_image(net, PREDICT_SIZE, backward=False)
        facts["train_gflop"] = gflops_per_image(net, TRAIN_SIZE, backward=True)
    except ImportError:
        pass  # no smp: the bounds need rows 1 and 2 anyway, which need it too
    facts["profile"] = step_profile(1 if quick else 3)
    return {"rows": [], "facts": facts, "notes": []}


def bound_notes(peak: dict, predict: dict, train: dict) -> list[str]:
    """Notes setting rows 1a/1b and 2 against the measured peaks (empty where a figure is missing).

    The reference peak is the one pixelwise's ``auto`` precision runs at: bf16 where the CPU has bf16
    matrix units, fp32 elsewhere.
    """
    notes = []
    mm32, mm16, conv = peak.get("mm_fp32"), peak.get("mm_bf16"), peak.get("conv_fp32")
    if not mm32:
        return notes
    native = peak.get("native_bf16", False)
    ref, ref_name = (mm16, "bf16") if native else (mm32, "fp32")
    why = ("native bf16 matrix units, AMX or AVX-512-BF16" if native else
           "no AMX or AVX-512-BF16: bf16 is converted to fp32 around fp32 arithmetic")
    notes.append(f"Peaks measured here ({peak['threads']} threads): a 2048x2048 matrix multiply runs at {mm32:.0f} "
                 f"GFLOP/s in fp32 and {mm16:.0f} GFLOP/s in bf16 ({mm16 / mm32:.2f}x fp32: {why}); a U-Net's 3x3 "
                 f"convolution (128 channels, 4x88x120, channels_last) {conv:.0f} GFLOP/s in fp32. pixelwise's "
                 f"`auto` precision runs {ref_name} here, so {ref_name} is the peak the rows are set against.")
    ips = predict.get("images_per_s", {})
    if "predict_gflop" in peak and "smp plain loop" in ips:
        flop, plain = peak["predict_gflop"], ips["smp plain loop"]
        need = 7 * plain * flop
        lines = [f"What bounds row 1a: smp.Unet('resnet34') costs {flop:.1f} GFLOP per 352x480 image. The plain "
                 f"fp32 loop sustains {plain * flop:.0f} GFLOP/s ({plain * flop / mm32:.0%} of the fp32 peak)"]
        for name, label in (("smp pixelwise default", "pixelwise's defaults"), ("smp bare openvino", "bare OpenVINO")):
            if name in ips:
                lines.append(f"; {label} {ips[name] * flop:.0f} GFLOP/s ({ips[name] * flop / ref:.0%} of the "
                             f"{ref_name} peak)")
        lines.append(f". 7x the plain loop would take {need:.0f} GFLOP/s, {need / ref:.0%} of the {ref_name} peak")
        lines.append(": beyond what any runtime can do on this CPU." if need > ref else
                     ": within the peak, so the gap is in how close a runtime gets to it (convolutions on "
                     "small maps, memory-bound layers: batch norm, activations, upsampling, concatenation).")
        if "smp bare openvino" in ips:
            lines.append(f" The fastest runtime measured here, bare OpenVINO (model calls only, no decoding), is "
                         f"{ips['smp bare openvino'] / plain:.1f}x the plain loop: that is the ceiling for pixelwise, "
                         "which runs that same runtime and must also decode, resize and label every image.")
        notes.append("".join(lines))
    rates = train.get("plain_rates")
    if "train_gflop" in peak and rates:
        flop, plain = peak["train_gflop"], statistics.median(rates)
        need = 4 * plain * flop
        text = (f"What bounds row 2: a training step costs {flop:.1f} GFLOP per 256x256 image (forward + backward "
                f"of smp.Unet('resnet34')). The plain fp32 loop sustains {plain * flop:.0f} GFLOP/s "
                f"({plain * flop / mm32:.0%} of the fp32 peak)")
        if train.get("pixelwise_rates"):
            ours = statistics.median(train["pixelwise_rates"]) * flop
            text += f"; pixelwise {ours:.0f} GFLOP/s ({ours / ref:.0%} of the {ref_name} peak)"
        text += f". 4x would take {need:.0f} GFLOP/s, {need / ref:.0%} of the {ref_name} peak."
        prof = peak.get("profile")
        if prof and train.get("pixelwise_rates"):
            alone = BATCH / prof["step_s"]
            ours = statistics.median(train["pixelwise_rates"])
            text += (f" pixelwise's {prof['precision']} step alone, on one batch held in memory (profile below), runs "
                     f"{alone:.1f} images/s, {alone / plain:.1f}x the plain loop; the trainer end to end reached "
                     f"{ours:.1f}" + (": the rest goes to loading and augmenting the batches on the same cores, "
                                      "gradient clipping and bookkeeping." if ours < 0.9 * alone else
                                      ", as fast as its step alone: the step's arithmetic is what bounds it."))
        notes.append(text)
    prof = peak.get("profile")
    if prof:
        phases = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in prof["phase_s"].items())
        shares = ", ".join(f"{k} {v:.0%}" for k, v in prof["op_share"].items())
        notes.append(f"Profile of one {prof['precision']} training step of pixelwise's U-Net/ResNet-34 (256x256, "
                     f"batch 8, {prof['step_s']:.2f} s): {phases}. Operator CPU time by family (torch.profiler, "
                     f"self time): {shares}. Everything but the convolutions is memory-bound work that faster "
                     "matrix units do not speed up; fusing it (torch.compile, row 2b) is what can shave it.")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    parser.add_argument("--data", help="unused (run_all passes it to every row)")
    parser.add_argument("--json", help="also write the result here (for run_all.py)")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    f = result["facts"]
    print(f"  fp32 mm {f['mm_fp32']:.0f}, bf16 mm {f['mm_bf16']:.0f}, fp32 conv {f['conv_fp32']:.0f} GFLOP/s; "
          f"smp U-Net {f.get('predict_gflop', 0):.1f} GFLOP predict, {f.get('train_gflop', 0):.1f} GFLOP train step")
    print(f"  step profile: {f['profile']}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
