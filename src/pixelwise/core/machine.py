"""Facts about this machine that recipes and benchmark reports depend on: CPU model and instructions,
cores this process may use, and memory.

>>> info = machine_facts()
>>> info["cores"] >= 1, info["ram_gib"] is None or info["ram_gib"] > 0
(True, True)
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from pixelwise.core.device import cpu_has_fast_bf16


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor``."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (``avx512_bf16``, ``amx_tile``, ...; empty where unknown)."""
    return set((_cpuinfo_field("flags") or "").split())


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask: a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ram_gib() -> float | None:
    """Total memory in GiB (None where /proc/meminfo is unreadable)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine_facts() -> dict:
    """One dict of the facts above, with the instructions that decide bf16 and int8 speed."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(), "cores": usable_cores(), "ram_gib": ram_gib(), "gpu": gpu_name(),
        "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags, "avx512_vnni": "avx512_vnni" in flags,
        "amx": "amx_tile" in flags, "torch_fast_bf16": cpu_has_fast_bf16(),
    }
