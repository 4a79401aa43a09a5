"""int8 prediction: pixelwise with NNCF's int8 models against the plain fp32 loop and against its own bf16.

    python benchmarks/bench_int8.py [--data ../shared/data/camvid] [--images 16] [--repeats 3] [--quick]

Three networks, seeded random weights (speed does not depend on them), 11 CamVid classes, 352x480:
smp.Unet('resnet34') as in rows 1a-1g, pixelwise's classic U-Net, and the U-Net over EfficientNet-Lite0 that
the CamVid recipe trains. Each is exported to OpenVINO IR and quantized by NNCF (plain mode, calibrated on
the benchmark's own val images: accuracy is issue 17's check_int8.py, not this). For each network, in turn
within every repeat after a warm-up: the plain loop of the tutorials (PIL, eager fp32, batch 1, argmax),
pixelwise's defaults on the fp32 IR (OpenVINO, bf16 where the CPU has it) and pixelwise on the int8 IR.

The int8 peak: a 2048x2048x2048 matrix multiply in OpenVINO, int8 (inputs through a FakeQuantize, int8
weights: what NNCF's models run) and bf16, so the int8 rows can say what share of the CPU's int8 rate
they reach.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import replace
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
from bench_peak import gflops_per_image
from bench_predict import SIZE, pixelwise_loop, plain_loop, smp_unet, val_files

from pixelwise.core.machine import machine_facts
from pixelwise.data.presets import get_preset
from pixelwise.inference.export import export_openvino
from pixelwise.inference.predictor import Predictor
from pixelwise.inference.quantize import CalibrationImages
from pixelwise.inference.quantize_base import QUANTIZERS
from pixelwise.models import create_model
from pixelwise.models.checkpoint import CheckpointMeta

NETWORKS = ("smp U-Net/ResNet-34", "classic U-Net", "U-Net/EfficientNet-Lite0")
TARGET_VS_PLAIN = 7.0  # issue 17: int8 end to end >= 7x the plain fp32 loop


def networks(num_classes: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {NETWORKS[0]: smp_unet(num_classes),
            NETWORKS[1]: create_model("unet", num_classes=num_classes).eval(),
            NETWORKS[2]: create_model("unet", num_classes=num_classes, encoder="efficientnet_lite0",
                                      encoder_weights=None).eval()}


def int8_ir(net: torch.nn.Module, meta: CheckpointMeta, files: list[Path], tmp: Path, name: str) -> tuple[Path, Path]:
    """The network's fp32 IR and its NNCF int8 IR (metadata marked int8, as ``pixelwise quantize`` writes)."""
    fp32 = export_openvino(net, meta, tmp / f"{name}.xml")
    int8_meta = replace(meta, extra={"int8": {"benchmark": "speed only"}})
    out = tmp / f"{name}_int8.xml"
    QUANTIZERS.get("openvino").quantize(fp32, CalibrationImages(files, meta), out, int8_meta.to_json())
    return fp32, out


def openvino_matmul_gops(n: int, int8: bool, repeats: int) -> float:
    """Giga-operations/s of an n x n x n matrix multiply in OpenVINO (a multiply-add counted as 2), the fastest
    of ``repeats``: int8 (FakeQuantize'd input, int8 weights) or bf16 (fp32 weights, bf16 inference hint)."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32, name="x")
    if int8:
        low, high = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
        weights = ops.multiply(ops.convert(ops.constant(rng.integers(-127, 128, (n, n), dtype=np.int8)), np.float32),
                               ops.constant(np.full((n, 1), 0.01, np.float32)))
        y = ops.matmul(ops.fake_quantize(x, low, high, low, high, 256), weights, False, True)
    else:
        y = ops.matmul(x, ops.constant(rng.standard_normal((n, n)).astype(np.float32)), False, True)
    compiled = ov.Core().compile_model(ov.Model([y], [x]), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    request, a = compiled.create_infer_request(), rng.standard_normal((n, n)).astype(np.float32)
    request.infer({0: a})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        request.infer({0: a})
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def measure(data: str, n_images: int, repeats: int) -> dict:
    names = [f"1{letter} predict {net}: pixelwise int8 vs plain fp32 loop"
             for letter, net in zip("jkl", NETWORKS, strict=True)]
    if not has_data(data):
        return {"rows": [skipped(name, "no data", TARGET_VS_PLAIN) for name in names], "facts": {}, "notes": []}
    files, classes = val_files(data, n_images), get_preset("camvid")
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-int8-"))
    try:
        configs, facts = {}, {"images": len(files), "repeats": repeats, "machine": machine_facts()}
        for name, net in networks(classes.num_classes).items():
            meta = CheckpointMeta(model="benchmark", model_kwargs={}, classes=classes, input_size=SIZE)
            start = time.perf_counter()
            fp32, int8 = int8_ir(net, meta, files, tmp, f"net{len(configs)}")
            facts[f"{name} quantize_s"] = time.perf_counter() - start
            default, quantized = Predictor(fp32), Predictor(int8)
            facts[f"{name} precisions"] = (default.backend.precision, quantized.backend.precision)
            facts[f"{name} gflop"] = gflops_per_image(net, SIZE, backward=False)
            configs[f"{name} plain"] = lambda fs, n=net: plain_loop(n, fs)
            configs[f"{name} bf16"] = lambda fs, p=default: pixelwise_loop(p, fs)
            configs[f"{name} int8"] = lambda fs, p=quantized: pixelwise_loop(p, fs)
        for fn in configs.values():  # warm-up
            fn(files[:2])
        times: dict[str, list[float]] = {name: [] for name in configs}
        for r in range(repeats):
            for name, fn in configs.items():
                start = time.perf_counter()
                fn(files)
                times[name].append(time.perf_counter() - start)
            print(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {len(files) / v[-1]:.2f}"
                                                            for k, v in times.items()) + " img/s", flush=True)
        ips = {name: len(files) / float(np.median(t)) for name, t in times.items()}
        facts.update(images_per_s=ips, peak_int8=openvino_matmul_gops(2048, True, 10),
                     peak_bf16=openvino_matmul_gops(2048, False, 10))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for row_name, net in zip(names, NETWORKS, strict=True):
        plain, bf16, int8 = ips[f"{net} plain"], ips[f"{net} bf16"], ips[f"{net} int8"]
        precision, int8_precision = facts[f"{net} precisions"]
        rows.append(row(row_name, f"{plain:.2f} img/s (PIL, eager fp32, batch 1)",
                        f"{int8:.2f} img/s ({int8_precision}; {int8 / bf16:.2f}x pixelwise {precision}, "
                        f"{bf16:.2f} img/s)", int8 / plain, TARGET_VS_PLAIN))
    return {"rows": rows, "facts": facts, "notes": [note(facts)]}


def note(f: dict) -> str:
    """What the rows measured, and the share of the CPU's int8 peak the int8 prediction reaches."""
    m, ips = f["machine"], f["images_per_s"]
    instructions = [name for key, name in (("avx512_vnni", "AVX-512-VNNI"), ("amx", "AMX"),
                                           ("avx512_bf16", "AVX-512-BF16")) if m.get(key)]
    shares = "; ".join(f"{net} {ips[f'{net} int8'] * f[f'{net} gflop']:.0f} GOP/s "
                       f"({ips[f'{net} int8'] * f[f'{net} gflop'] / f['peak_int8']:.0%})" for net in NETWORKS)
    return (f"Rows 1j-1l: {f['images']} CamVid val images at 352x480, median of {f['repeats']} repeats, each network "
            "exported to OpenVINO IR and quantized by NNCF (plain mode, calibrated on the same images; seeded random "
            "weights, so these rows measure speed only; accuracy on a trained model is README \"int8 models\"). "
            f"CPU: {m['cpu']}, {m['cores']} cores; its int8/bf16 instructions: {', '.join(instructions) or 'none'}. "
            f"OpenVINO's peak here, a 2048x2048x2048 matrix multiply: int8 {f['peak_int8']:.0f} GOP/s, bf16 "
            f"{f['peak_bf16']:.0f} GFLOP/s ({f['peak_int8'] / f['peak_bf16']:.2f}x). int8 prediction end to end "
            f"reaches (share of the int8 peak): {shares}. Everything outside the convolutions (decoding, "
            "resizing, batch norm folded or not, upsampling, concatenation, the logits' resize and class ids) does "
            "not run faster in int8, so the share falls as the network gets lighter.")


def main(argv: list[str] | None = None) -> int:
    args = parse_image_bench_args(image_bench_parser(__doc__, images=16), argv)
    result = measure(args.data, args.images, args.repeats)
    print_rows(result["rows"])
    print("\n".join(result["notes"]))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
