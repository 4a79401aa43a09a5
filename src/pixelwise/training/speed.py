"""How fast this machine trains a candidate model: a few timed training steps, cached per machine.

The planner turns a time budget into a model size, a training size and a number of epochs; for that it
needs this machine's real training speed, not a guess. A convolutional network's step time grows about
linearly with the pixels of a batch, so one probe size per model is enough: the result is stored as
**megapixels per second** (images/s x height x width / 1e6) and scaled to any size by the planner.

The probe runs the real training step (forward, loss, backward, fused AdamW step) with the precision
``auto`` picks and random weights (weights do not change the speed), and takes the median of a few
steps after a warm-up step. Results are cached in ``<cache>/speed.json`` keyed by CPU/GPU model, usable
cores, torch and pixelwise versions and precision, so a machine measures each model once.

>>> speed = measure_training_speed("unet", {"base_filters": 4, "depth": 2}, size=(32, 32), batch_size=2, steps=1,
...                                precision="fp32")
>>> speed > 0
True
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from pixelwise.core.device import autocast, resolve_device, resolve_precision
from pixelwise.core.files import write_json
from pixelwise.core.machine import cpu_model, gpu_name, usable_cores
from pixelwise.core.version import __version__
from pixelwise.data.cache import cache_dir
from pixelwise.models import create_model
from pixelwise.models.cpu_kernels import depthwise_in_fp32

PROBE_SIZE = (256, 256)
# Part of the cache key: raise it when the training step changes speed (2: depthwise convs in fp32 on CPU bf16).
PROBE_VERSION = 2
PROBE_BATCH = 4


def measure_training_speed(model: str, model_kwargs: dict[str, Any], size: tuple[int, int] = PROBE_SIZE,
                           batch_size: int = PROBE_BATCH, steps: int = 3, precision: str = "auto",
                           device: str = "auto", num_classes: int = 8) -> float:
    """Training megapixels per second of ``model`` on this machine (median of ``steps`` timed steps)."""
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    torch.manual_seed(0)
    net = create_model(model, num_classes=num_classes, **model_kwargs).to(dev).train()
    channels_last = prec != "fp32"  # as the trainer does
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if dev.type == "cpu" and prec == "bf16":
        depthwise_in_fp32(net)  # as the trainer does
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
    images = torch.randn(batch_size, 3, *size, device=dev)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, num_classes, (batch_size, *size), device=dev)
    times = []
    for step in range(steps + 1):  # the first step warms up (allocations, kernel choices) and is not timed
        start = time.perf_counter()
        with autocast(dev, prec):
            logits = net(images)
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    return batch_size * size[0] * size[1] / statistics.median(times) / 1e6


def machine_key(precision: str, device: str) -> str:
    """What a speed depends on besides the model: the processor, the cores we may use, the software."""
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    chip = gpu_name() if dev.type == "cuda" else cpu_model()
    return (f"{chip} | {usable_cores()} cores | torch {torch.__version__} | pixelwise {__version__} | {prec}"
            f" | probe {PROBE_VERSION}")


def speed_cache_path() -> Path:
    return cache_dir() / "speed.json"


def cached_training_speed(model: str, model_kwargs: dict[str, Any], precision: str = "auto",
                          device: str = "auto", refresh: bool = False) -> float:
    """:func:`measure_training_speed` at the probe size, measured once per machine and model."""
    spec = json.dumps({"model": model, "kwargs": model_kwargs, "size": PROBE_SIZE, "batch": PROBE_BATCH},
                      sort_keys=True)
    key = hashlib.sha256(f"{machine_key(precision, device)} | {spec}".encode()).hexdigest()[:16]
    path = speed_cache_path()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if key not in table or refresh:
        table[key] = {"mpx_per_s": measure_training_speed(model, model_kwargs, precision=precision, device=device),
                      "machine": machine_key(precision, device), "model": json.loads(spec)}
        write_json(path, table)
    return float(table[key]["mpx_per_s"])
