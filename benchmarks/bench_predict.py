"""Prediction images/s at 352x480 on CamVid val images: pixelwise against a plain PyTorch loop and bare OpenVINO.

    python benchmarks/bench_predict.py [--data ../shared/data/camvid] [--images 40] [--repeats 3] [--quick]

The network is smp.Unet('resnet34') with fixed random weights (seed 0; no download), 11 CamVid classes:

* baseline: the plain loop of the tutorials, file by file: PIL decode, resize to 480x352, normalise,
  fp32 eager forward at batch 1 under ``torch.no_grad()``, argmax;
* pixelwise: the same module with pixelwise metadata, exported to OpenVINO IR and run by
  ``Predictor(path).predict_files(files)`` with every default (auto backend and precision, batch 4,
  decoding workers as ``resolve_workers`` picks, labels at the image's own 360x480 size);
* bare OpenVINO: ``compile_model`` of the same IR (bf16 where the CPU has it, else f32), timing only the
  model calls on tensors decoded beforehand;
* each backend (torch, onnxruntime, openvino) for the smp network and for pixelwise's classic U-Net,
  against the same plain loop on the same network.

All configurations are timed in turn within each repeat (so a slow moment hurts all alike) after one
warm-up pass each; the reported figure is the median over repeats.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_common import (
    has_data,
    image_bench_parser,
    median_time,
    parse_image_bench_args,
    print_rows,
    row,
    skipped,
    write_json,
)
from PIL import Image

from pixelwise.core.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelwise.core.device import resolve_precision, resolve_workers, torch_threads
from pixelwise.core.machine import machine_facts
from pixelwise.core.optional import is_installed
from pixelwise.data.io import read_image
from pixelwise.data.presets import get_preset
from pixelwise.data.transforms import eval_transform, normalize
from pixelwise.inference.backends import AUTO_OPENVINO_MIN_IMAGES
from pixelwise.inference.compare import compare_with_runtime
from pixelwise.inference.export import export_checkpoint, export_onnx, export_openvino
from pixelwise.inference.predictor import Predictor, class_ids
from pixelwise.models import create_model
from pixelwise.models.base import logits_at_size
from pixelwise.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint

SIZE = (352, 480)  # (height, width): CamVid's 360x480 rounded down to the networks' multiple of 32
ROW_NAMES = ("1a predict 352x480: pixelwise defaults vs plain smp fp32 loop",
             "1b predict 352x480: pixelwise defaults vs bare OpenVINO (model time only)")


def val_files(data: str | Path, n: int) -> list[Path]:
    return sorted((Path(data) / "val").glob("*.png"))[:n]


def smp_unet(num_classes: int, seed: int = 0) -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    return smp.Unet("resnet34", encoder_weights=None, classes=num_classes).eval()


_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def plain_input(path: Path) -> torch.Tensor:
    """The tutorial preprocessing: PIL decode, resize, to float, ImageNet normalisation; ``(1, 3, H, W)``."""
    image = Image.open(path).convert("RGB").resize((SIZE[1], SIZE[0]), Image.BILINEAR)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    return ((x - _MEAN) / _STD)[None]


def plain_loop(model: torch.nn.Module, files: list[Path]) -> None:
    with torch.no_grad():
        for path in files:
            model(plain_input(path)).argmax(1)  # as a plain loop would write it


def decode_only(files: list[Path]) -> None:
    for path in files:
        plain_input(path)


def pixelwise_loop(predictor: Predictor, files: list[Path]) -> None:
    for _ in predictor.predict_files(files):  # defaults: batch 4, decoding workers per resolve_workers
        pass


def bare_openvino(xml: Path):
    """``(model_call, hint)``: OpenVINO's compiled model with bf16 where the CPU supports it, else f32."""
    import openvino as ov

    core = ov.Core()
    hint = "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
    compiled = core.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return compiled, hint


def pixelwise_inputs(files: list[Path]) -> list[np.ndarray]:
    """The images as pixelwise feeds them to the model (its resize and normalisation), decoded beforehand."""
    transform, out = eval_transform(SIZE), []
    for path in files:
        image = transform(image=read_image(path))["image"]
        x = normalize(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None], IMAGENET_MEAN,
                      IMAGENET_STD)
        out.append(np.ascontiguousarray(x.numpy()))
    return out


def measure(data: str, n_images: int, repeats: int) -> dict:
    if not has_data(data):
        return {"rows": [skipped(ROW_NAMES[0], "no data", 7.0), skipped(ROW_NAMES[1], "no data", 1.0)],
                "facts": {}, "notes": []}
    files = val_files(data, n_images)
    classes = get_preset("camvid")
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-predict-"))
    try:
        return _measure(files, classes, tmp, repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(files: list[Path], classes, tmp: Path, repeats: int) -> dict:
    os.environ["PIXELWISE_CACHE"] = str(tmp / "cache")  # conversions made by backend="onnxruntime"/"openvino"
    facts: dict = {"images": len(files), "repeats": repeats, "size": SIZE, "torch_threads": torch.get_num_threads(),
                   "cores": os.cpu_count()}

    start = time.perf_counter()
    net = smp_unet(classes.num_classes)
    meta = CheckpointMeta(model="smp_unet", model_kwargs={}, classes=classes, input_size=SIZE)
    net.meta = meta
    smp_onnx = export_onnx(net, meta, tmp / "smp.onnx")
    smp_xml = export_openvino(net, meta, tmp / "smp.xml")
    facts["smp_params"] = sum(p.numel() for p in net.parameters())
    facts["smp_ir_max_abs_diff"] = compare_with_runtime(net, smp_xml, (1, 3, *SIZE))
    torch.manual_seed(0)
    classic = create_model("unet", num_classes=classes.num_classes).eval()  # base 16, depth 5
    ckpt = tmp / "classic.safetensors"
    save_checkpoint(ckpt, classic, CheckpointMeta.for_model(classic, classes, input_size=SIZE))
    facts["classic_params"] = sum(p.numel() for p in classic.parameters())

    default = Predictor(smp_xml)  # what `auto` runs: the IR on OpenVINO, precision auto
    facts["default_backend"] = f"{default.backend.name} {getattr(default.backend, 'precision', 'fp32')}"
    facts["torch_precision"] = resolve_precision("auto", torch.device("cpu"))  # what backend=torch runs
    compiled, hint = bare_openvino(smp_xml)
    inputs = pixelwise_inputs(files)
    # Each configuration: a function of (files, pre-decoded inputs) that predicts them all.
    configs = {
        "smp plain loop": lambda fs, xs: plain_loop(net, fs),
        "smp pixelwise default": lambda fs, xs: pixelwise_loop(default, fs),
        "smp bare openvino": lambda fs, xs: [compiled(x) for x in xs],
        "smp pixelwise torch": lambda fs, xs, p=Predictor(net, backend="torch"): pixelwise_loop(p, fs),
        "smp pixelwise onnxruntime": lambda fs, xs, p=Predictor(smp_onnx): pixelwise_loop(p, fs),
        "classic plain loop": lambda fs, xs: plain_loop(classic, fs),
    }
    for backend in ("torch", "onnxruntime", "openvino"):
        configs[f"classic pixelwise {backend}"] = (
            lambda fs, xs, p=Predictor(ckpt, backend=backend): pixelwise_loop(p, fs))
    # Profile: decoding alone, and pixelwise's OpenVINO backend alone (batches of 4, pre-decoded).
    configs["decode only"] = lambda fs, xs: decode_only(fs)
    configs["pixelwise backend only"] = lambda fs, xs: [
        default.backend(torch.from_numpy(np.concatenate(xs[i:i + 4]))) for i in range(0, len(xs), 4)]
    facts["setup_s"] = time.perf_counter() - start
    print(f"  setup (exports, conversions) {facts['setup_s']:.0f} s; bare OpenVINO hint {hint}", flush=True)

    for fn in configs.values():  # warm-up: first-call allocations, OpenVINO/oneDNN kernel selection
        fn(files[:2], inputs[:2])
    times: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(repeats):
        for name, fn in configs.items():
            t0 = time.perf_counter()
            fn(files, inputs)
            times[name].append(time.perf_counter() - t0)
        print(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {len(files) / v[-1]:.2f}" for k, v in times.items())
              + " img/s", flush=True)
    ips = {name: len(files) / float(np.median(t)) for name, t in times.items()}
    facts["images_per_s"] = ips
    facts["default_workers"] = resolve_workers(None, torch.device("cpu"))
    logits = torch.randn(1, 11, *SIZE)  # the plain loop's argmax(1) vs pixelwise's max(1).indices
    facts["argmax_ms"] = 1e3 * median_time(lambda: logits.argmax(1), 5)
    facts["max_indices_ms"] = 1e3 * median_time(lambda: logits.max(1).indices, 5)
    facts["spread"] = {name: (len(files) / max(t), len(files) / min(t)) for name, t in times.items()}
    facts["bare_openvino_hint"] = hint

    def fmt(name: str) -> str:
        return f"{ips[name]:.2f} img/s"

    rows = [
        row(ROW_NAMES[0], f"{fmt('smp plain loop')} (PIL, eager fp32, batch 1)",
            f"{fmt('smp pixelwise default')} ({facts['default_backend']})",
            ips["smp pixelwise default"] / ips["smp plain loop"], 7.0),
        row(ROW_NAMES[1], f"{fmt('smp bare openvino')} (bare OpenVINO {hint}, model calls only)",
            f"{fmt('smp pixelwise default')} (end to end)",
            ips["smp pixelwise default"] / ips["smp bare openvino"], 1.0),
        row("1c predict smp U-Net: pixelwise backend=torch vs plain loop", fmt("smp plain loop"),
            f"{fmt('smp pixelwise torch')} (torch {facts['torch_precision']})",
            ips["smp pixelwise torch"] / ips["smp plain loop"]),
        row("1d predict smp U-Net: pixelwise backend=onnxruntime vs plain loop", fmt("smp plain loop"),
            fmt("smp pixelwise onnxruntime"), ips["smp pixelwise onnxruntime"] / ips["smp plain loop"]),
    ]
    for letter, backend in zip("efg", ("torch", "onnxruntime", "openvino"), strict=True):
        name = f"classic pixelwise {backend}"
        rows.append(row(f"1{letter} predict classic U-Net: pixelwise backend={backend} vs plain loop",
                        fmt("classic plain loop"), fmt(name), ips[name] / ips["classic plain loop"]))
    decode_ms = 1e3 / ips["decode only"]
    eager_ms = 1e3 / ips["smp plain loop"] - decode_ms
    facts.update(decode_ms=decode_ms, eager_model_ms=eager_ms, bare_ov_ms=1e3 / ips["smp bare openvino"],
                 pixelwise_ms=1e3 / ips["smp pixelwise default"], backend_ms=1e3 / ips["pixelwise backend only"])
    return {"rows": rows, "facts": facts, "notes": notes(facts)}


def notes(f: dict) -> list[str]:
    best = (f["decode_ms"] + f["eager_model_ms"]) / min(f["bare_ov_ms"], f["backend_ms"])
    return [
        f"Rows 1a-1g: {f['images']} CamVid val images (360x480 PNG) predicted at 352x480, median of {f['repeats']} "
        "repeats after a warm-up pass, all configurations in turn within each repeat. Network: smp.Unet('resnet34', "
        f"encoder_weights=None, classes=11), {f['smp_params'] / 1e6:.1f}M parameters, seeded random weights; "
        f"pixelwise's classic U-Net: base 16, depth 5, {f['classic_params'] / 1e6:.1f}M parameters.",
        "*pixelwise defaults* = `Predictor(model).predict_files(files)` with nothing else set: backend `auto`, "
        f"precision `auto`, batch 4, {f['default_workers']} background decoding workers (`resolve_workers`: none "
        "on a CPU of 2 cores or fewer, where they would preempt the model's threads, else 2), labels resized back "
        "to 360x480. `auto` runs an "
        "exported OpenVINO IR on OpenVINO; for a pixelwise checkpoint on a CPU it runs the IR `train` wrote beside "
        f"it, else makes (and caches) one once the job has {AUTO_OPENVINO_MIN_IMAGES} or more images. The smp module "
        "is not a pixelwise architecture, so it is exported "
        f"with `export_openvino(model, meta, path)` and the IR is passed. Here that is **{f['default_backend']}** "
        f"(IR vs PyTorch fp32 logits: max abs difference {f['smp_ir_max_abs_diff']:.1e}).",
        f"Profile of the plain loop: decoding + resizing + normalising {f['decode_ms']:.0f} ms/image, the eager fp32 "
        f"forward about {f['eager_model_ms']:.0f} ms/image; bare OpenVINO {f['bare_openvino_hint']} takes "
        f"{f['bare_ov_ms']:.0f} ms/image, pixelwise's OpenVINO backend alone (batch 4, pre-decoded) "
        f"{f['backend_ms']:.0f} ms/image and pixelwise end to end {f['pixelwise_ms']:.0f} ms/image. The plain "
        f"loop's `argmax(1)` over the 11 class maps alone takes {f['argmax_ms']:.0f} ms/image on this CPU (a "
        f"strided reduction); pixelwise's `max(1).indices` gives the same ids in {f['max_indices_ms']:.0f} ms. "
        "With decoding entirely hidden, pixelwise can at best match its runtime's model calls (the faster of "
        "the two above): "
        f"{best:.1f}x the plain loop here. " + precision_note(f),
        one_b(f),
        *slower_than_plain(f),
        "Spread over the repeats (img/s, slowest-fastest): " + "; ".join(
            f"{name} {lo:.2f}-{hi:.2f}" for name, (lo, hi) in f["spread"].items()) + ": a ratio closer to 1 than "
        "these spreads is no difference.",
    ]


def precision_note(f: dict) -> str:
    """Why the default ran the precision it did (the 7x target assumes bf16 matrix units)."""
    if "bf16" in f["default_backend"]:
        return ("This CPU has bf16 matrix units (AMX or AVX-512-BF16), so precision `auto` runs bf16: the case "
                "the 7x target was set for.")
    return ("The 7x target was set for CPUs with bf16 matrix units (AMX or AVX-512-BF16), where precision `auto` "
            "runs bf16; this CPU has neither, so `auto` stays fp32 (bf16 without them is emulated, slower than "
            "fp32) and the model's fp32 arithmetic bounds the ratio.")


def one_b(f: dict) -> str:
    """What 1b's gap is made of: the work around the model, or the model calls themselves."""
    where = (f"in {f['default_workers']} worker processes" if f["default_workers"]
             else "in threads beside the model's asynchronous requests")
    text = (f"1b compares pixelwise's whole path (decode {where}, resize, normalise, model, resize "
            f"logits, class ids: {f['pixelwise_ms']:.0f} ms/image) with bare OpenVINO's model calls alone "
            f"({f['bare_ov_ms']:.0f} ms/image). ")
    if f["pixelwise_ms"] <= f["backend_ms"] * 1.1:
        return text + (f"pixelwise's own model calls (its OpenVINO backend, batch 4, pre-decoded) took "
                       f"{f['backend_ms']:.0f} ms/image, about its end-to-end time, so decoding and the rest are "
                       "hidden behind the model; the gap is in the model calls (batch 4 and the backend's copies in "
                       "and out vs batch-1 calls on shared arrays).")
    why = (f"on {f['cores']} cores the decoding workers take CPU from the model rather than using idle cores."
           if f["default_workers"] else "decoding, the logits' resize and the class ids overlap the model's calls "
           "(pipelined) but run on the same cores as its streams (rows 1m-1n).")
    return text + (f"Its model calls alone took {f['backend_ms']:.0f} ms/image, so the work around them adds "
                   f"{f['pixelwise_ms'] - f['backend_ms']:.0f} ms/image: {why}")


def slower_than_plain(f: dict) -> list[str]:
    """One line naming the pixelwise configurations the plain loop beat on the same network, if any."""
    ips, slower = f["images_per_s"], []
    for net in ("smp", "classic"):
        for backend in ("torch", "onnxruntime", "openvino"):
            name = f"{net} pixelwise {backend}"
            if name in ips and ips[name] < ips[f"{net} plain loop"] * 0.95:
                slower.append(f"{name} ({ips[name] / ips[f'{net} plain loop']:.2f}x)")
    if not slower:
        return []
    return [f"Slower than the plain loop on the same network: {', '.join(slower)}. Likely why: batch 4 instead of 1, "
            f"and {f['default_workers']} decoding worker processes on the same {f['cores']} cores as the model's "
            f"{f['torch_threads']} threads (the plain loop decodes between forwards, never alongside them)."]


PEER_ROW = "1m predict: pixelwise bf16 end to end vs the fair OpenVINO script"
PIPELINE_ROW = "1n predict: pixelwise pipelined (default) vs sequential, same backend"


def fair_peer(data: str, n_images: int, repeats: int, checkpoint: str | None = None) -> dict:
    """Rows 1m-1n: pixelwise's defaults against ``openvino_peer.py`` (OpenVINO's documented end-to-end recipe)
    on the same IR and images, and pixelwise pipelined against its own sequential path.

    The model: ``checkpoint`` (a pixelwise checkpoint, exported to IR here) or, without one, row 1's smp U-Net.
    """
    if not has_data(data) or not is_installed("openvino"):
        why = "no data" if not has_data(data) else "openvino not installed"
        return {"rows": [skipped(PEER_ROW, why, 1.0), skipped(PIPELINE_ROW, why)], "facts": {}, "notes": []}
    import openvino_peer

    files = val_files(data, n_images)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-peer-"))
    try:
        if checkpoint:
            xml = export_checkpoint(checkpoint, tmp / "model.xml", fmt="openvino")
            model = f"{Path(checkpoint).name} ({load_checkpoint(checkpoint)[1].model})"
        else:
            net = smp_unet(11)
            xml = export_openvino(net, CheckpointMeta(model="smp_unet", model_kwargs={}, classes=get_preset("camvid"),
                                                      input_size=SIZE), tmp / "smp.xml")
            model = "smp.Unet('resnet34'), seeded random weights"
        predictor = Predictor(xml)  # every default: auto precision, batch 4, pipelined
        meta = predictor.meta
        peer = openvino_peer.compile_for_throughput(xml)
        mean, std = np.array(meta.mean, np.float32), np.array(meta.std, np.float32)
        configs = {
            "peer": lambda: openvino_peer.predict(peer, files, meta.input_size, mean, std),
            "pixelwise": lambda: [ids for _, ids in predictor.predict_files(files)],
            "pixelwise sequential": lambda: [ids for _, ids in predictor.predict_files(files, pipelined=False)],
        }
        times, labels = time_in_turn(configs, repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ips = {name: len(files) / float(np.median(t)) for name, t in times.items()}
    facts = {"model": model, "size": meta.input_size, "images": len(files), "repeats": repeats, "images_per_s": ips,
             "spread": {name: (len(files) / max(t), len(files) / min(t)) for name, t in times.items()},
             "pixelwise_precision": predictor.backend.precision,
             "peer_precision": peer.get_property("INFERENCE_PRECISION_HINT").to_string(),
             "peer_streams": peer.get_property("NUM_STREAMS"),
             "peer_requests": peer.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"),
             "agreement": float(np.mean([np.mean(a == b) for a, b in zip(labels["peer"], labels["pixelwise"],
                                                                         strict=True)])),
             "sequential_identical": all(np.array_equal(a, b) for a, b in zip(
                 labels["pixelwise"], labels["pixelwise sequential"], strict=True)),
             "label_ms": label_step_ms(meta.classes.num_classes),
             **{k: v for k, v in machine_facts().items() if k in ("cpu", "cores", "avx512_bf16", "avx512_vnni", "amx")}}
    fmt = {name: f"{v:.2f} img/s" for name, v in ips.items()}
    rows = [row(PEER_ROW, f"{fmt['peer']} (OpenVINO THROUGHPUT hint, AsyncInferQueue, {facts['peer_precision']})",
                f"{fmt['pixelwise']} (`Predictor(ir).predict_files`, {facts['pixelwise_precision']})",
                ips["pixelwise"] / ips["peer"], 1.0),
            row(PIPELINE_ROW, f"{fmt['pixelwise sequential']} (decode, model, labels in turn)",
                f"{fmt['pixelwise']} (pipelined)", ips["pixelwise"] / ips["pixelwise sequential"])]
    return {"rows": rows, "facts": facts, "notes": [peer_note(facts)]}


def label_step_ms(classes: int) -> dict[str, float]:
    """Milliseconds, one torch thread, from one image's ``(classes, 352, 480)`` logits to its 360x480 labels:
    pixelwise's (logits resized, then class ids) and the peer's (argmax, then labels resized, nearest)."""
    logits = torch.randn(classes, *SIZE)
    array = logits.numpy()[None]
    with torch_threads(1):
        class_ids(logits_at_size(logits, SIZE, (360, 480)))  # warm-up
        ours = median_time(lambda: class_ids(logits_at_size(logits, SIZE, (360, 480))), 20)
    theirs = median_time(lambda: cv2.resize(array[0].argmax(0).astype(np.uint8), (480, 360),
                                            interpolation=cv2.INTER_NEAREST), 20)
    return {"pixelwise": 1e3 * ours, "peer": 1e3 * theirs}


def time_in_turn(configs: dict, repeats: int) -> tuple[dict[str, list[float]], dict]:
    """Seconds of each configuration per repeat, all in turn within a repeat after one warm-up each; and each
    one's output of the warm-up.

    Each repeat starts one configuration further on (a, b, c; b, c, a; ...): whichever ran right after the
    peer measured ~1.5% slower than the same configuration run again (2-core EPYC, 5 repeats), so no
    configuration keeps one place.
    """
    outputs = {name: fn() for name, fn in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            configs[name]()
            times[name].append(time.perf_counter() - start)
        print(f"  peer repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    return times, outputs


def peer_note(f: dict) -> str:
    cpu = ", ".join(name for name in ("avx512_bf16", "avx512_vnni", "amx") if f[name]) or "neither AVX-512-BF16 nor AMX"
    return (f"Rows 1m-1n: {f['images']} CamVid val images, model {f['model']} at {f['size'][0]}x{f['size'][1]}, "
            f"one IR for both, median of {f['repeats']} repeats run in turn (each repeat starting one further on) "
            "after a warm-up. The fair peer is benchmarks/openvino_peer.py, written from OpenVINO's documentation: "
            "`compile_model` with "
            f"PERFORMANCE_HINT THROUGHPUT ({f['peer_streams']} streams, OpenVINO's default precision: "
            f"{f['peer_precision']}), an AsyncInferQueue of {f['peer_requests']} requests with a callback, OpenCV "
            "decode, resize, normalise, argmax at the model's size, labels resized back (nearest). pixelwise "
            f"({f['pixelwise_precision']}) resizes the logits back before the argmax instead (smoother borders; "
            f"labels agree with the peer's on {100 * f['agreement']:.1f}% of pixels), one class plane at a time with "
            f"OpenCV: {f['label_ms']['pixelwise']:.1f} ms per image against the peer's {f['label_ms']['peer']:.1f} ms "
            "(numpy argmax, nearest resize; 11x352x480 logits to 360x480 labels, one core). "
            f"CPU: {f['cpu']}, {f['cores']} cores, with {cpu}. Pipelined and sequential labels identical: "
            f"{f['sequential_identical']}. Spread (img/s, slowest-fastest): "
            + "; ".join(f"{name} {lo:.2f}-{hi:.2f}" for name, (lo, hi) in f["spread"].items()) + ".")


def main(argv: list[str] | None = None) -> int:
    parser = image_bench_parser(__doc__, images=16)
    parser.add_argument("--peer-checkpoint", help="rows 1m-1n on this pixelwise checkpoint (default: the smp U-Net)")
    parser.add_argument("--peer-images", type=int, default=48,
                        help="images for rows 1m-1n (pipelines fill and drain: a few images would time mostly that)")
    parser.add_argument("--peer-only", action="store_true", help="only rows 1m-1n")
    parser.add_argument("--no-peer", action="store_true", help="without rows 1m-1n (run_all times them apart)")
    args = parse_image_bench_args(parser, argv)
    result = {"rows": [], "facts": {}, "notes": []} if args.peer_only else measure(args.data, args.images, args.repeats)
    peer = {"rows": [], "facts": {}, "notes": []} if args.no_peer else fair_peer(
        args.data, args.images if args.quick else args.peer_images, args.repeats, args.peer_checkpoint)
    result = {"rows": result["rows"] + peer["rows"], "facts": {**result["facts"], "fair_peer": peer["facts"]},
              "notes": result["notes"] + peer["notes"]}
    print_rows(result["rows"])
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
