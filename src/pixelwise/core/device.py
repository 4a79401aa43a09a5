"""Which device and numeric precision to run on.

``auto`` precision means bf16 autocast where the hardware runs it fast (CUDA GPUs with bf16,
CPUs with AMX or AVX-512-BF16, where it is several times faster than fp32 for convolutions),
fp16 with loss scaling on older GPUs, and fp32 elsewhere.

>>> resolve_precision("fp32", torch.device("cpu"))
'fp32'
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import torch
import torch.distributed as dist

from pixelwise.core.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AMX tiles or AVX-512 BF16)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, "_is_amx_tile_supported", None), getattr(cpu, "_is_avx512_bf16_supported", None)]
    return any(check() for check in checks if check is not None)


def cpu_forced_by_launcher() -> bool:
    """True under ``accelerate launch --cpu``, which says so in ``ACCELERATE_USE_CPU``.

    Accelerate then puts the model on the CPU whatever we ask; ``auto`` follows it, so the precision
    is chosen for the CPU too (fp16, picked for an old GPU, does not run there).
    """
    return os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes", "y", "on")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() and not cpu_forced_by_launcher() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown --device '{name}'; use auto, cpu or cuda[:N]") from None


def resolve_precision(name: str, device: torch.device) -> str:
    if name not in PRECISIONS:
        raise ConfigError(f"unknown --precision '{name}'; choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise ConfigError("--precision fp16 needs a CUDA GPU; on a CPU use bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def resolve_workers(workers: int | None, device: torch.device) -> int:
    """Data-loading processes: ``workers`` when set, else 0 on a CPU of 2 cores or fewer, else 2.

    On a CPU the workers share the cores with the model's threads. With only 2 cores they preempt
    those threads at every parallel region, and decoding alongside the model was measured 20-30%
    slower than decoding between batches (CamVid, bf16, 2-core Xeon); with more cores, or a GPU
    running the model, background workers keep the model fed.

    >>> resolve_workers(3, torch.device("cpu"))
    3
    """
    if workers is not None:
        return workers
    return 0 if device.type == "cpu" and (os.cpu_count() or 1) <= 2 else 2


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Torch's CPU operators run on ``count`` threads inside the block (``None``: as they are).

    For work beside a runtime with its own thread pool (OpenVINO, onnxruntime): torch's OpenMP threads and
    the runtime's threads spin-wait for each other's cores. Measured serving a 128x160 U-Net on OpenVINO (2-core
    Xeon): 10.6 ms of CPU per request with torch's 2 threads around the model, 6.3 ms with 1.

    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    """
    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` ("fp32" gives a no-op context)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def sum_across_processes(tensor: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """``tensor`` summed over every process of the DDP group, returned on the CPU; itself in a single process.

    The collective runs on ``device`` (the accelerator's: a CUDA tensor under NCCL, which moves nothing
    else; a CPU tensor under gloo). Should the group be NCCL while ``device`` is the CPU, the process's
    own GPU is used, as NCCL cannot reduce CPU tensors. ``tensor`` itself is never modified.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    where = torch.device(device) if device is not None else torch.device("cpu")
    backend = str(dist.get_backend())  # "nccl", "gloo", or per device as in "cuda:nccl,cpu:gloo"
    if where.type != "cuda" and "nccl" in backend and "gloo" not in backend:
        where = torch.device("cuda", torch.cuda.current_device())
    summed = tensor.to(where, copy=True)
    dist.all_reduce(summed)
    return summed.cpu()


def compile_or_eager(model: torch.nn.Module):
    """``torch.compile(model)``, falling back to the eager model with one line on stderr if compiling fails.

    Compilation happens on the first call, so that is where a failure shows (no compiler, an
    unsupported op); the run goes on in eager mode rather than stopping.
    """
    compiled = torch.compile(model)
    state = {"forward": compiled}

    def forward(x: torch.Tensor) -> torch.Tensor:
        if state["forward"] is compiled:
            try:
                return compiled(x)
            except Exception as e:  # torch._dynamo raises many kinds; all mean "run eager instead"
                message = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:160]
                print(f"warning: torch.compile failed ({message}); running eager", file=sys.stderr)
                state["forward"] = model
        return state["forward"](x)

    return forward
