"""Kill -9 at any moment: `train --resume` continues from the newest consistent state, exactly.

Real processes and real SIGKILLs: at named points (pixelwise.core.faults: inside a save, between the two
renames that swap last/, during validation before anything was saved) and at random moments while training.
The run that was killed again and again ends with weights bit-identical to one that never was.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from pixelwise.testing import run_cli, start_cli
from pixelwise.training.state import read_state


def train_args(data: Path, out: Path, save_every: str = "1steps") -> list[str]:
    # 12 train images, batches of 2: 6 steps an epoch, a state saved after each; seeded fp32 on the CPU.
    return ["train", "--data", str(data), "--out", str(out), "--epochs", "3", "--img-size", "32x48",
            "--batch-size", "2", "--workers", "0", "--no-progress", "--precision", "fp32", "--device", "cpu",
            "--lr", "3e-3", "--seed", "3", "--model-option", "base_filters=4", "--model-option", "depth=2",
            "--save-every", save_every]


def resume_args(out: Path) -> list[str]:
    return ["train", "--out", str(out), "--resume", "--no-progress", "--save-every", "1steps"]


def saved_step(out: Path) -> int:
    try:
        return read_state(out / "last").step
    except Exception:  # not there yet, or being swapped this instant
        return -1


def kill_at_random(out: Path, rng: random.Random) -> int:
    """Resume the run, SIGKILL it at a random moment after its next save; return its exit status."""
    before = saved_step(out)
    process = start_cli(*resume_args(out))
    deadline = time.monotonic() + 120
    while process.poll() is None and saved_step(out) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.25))  # anywhere: mid-step, mid-save, mid-validation
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return process.returncode


def test_sigkill_at_any_moment_then_resume_is_bit_identical(tiny_data, tmp_path):
    straight = run_cli(*train_args(tiny_data, tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "b"

    # 1. Killed during the first validation, before anything was saved: --resume starts over, and says so.
    first = run_cli(*train_args(tiny_data, run, save_every="epoch"), env={"PIXELWISE_FAULT": "in-validation"})
    assert first.returncode == -signal.SIGKILL and not (run / "last").exists()
    # 2. That restart is killed inside its 2nd save (weights written, state not): last/ is the 1st save, whole.
    again = run_cli(*resume_args(run), env={"PIXELWISE_FAULT": "in-save:2"})
    assert again.returncode == -signal.SIGKILL
    assert "starting the run over in the same folder" in again.stdout
    assert read_state(run / "last").step == 1 and sorted(p.name for p in (run / "last").iterdir()) == [
        "model.safetensors", "state.pt"]
    # 3. Killed between the renames that swap last/: the old one waits in .last.old and is put back.
    swap = run_cli(*resume_args(run), env={"PIXELWISE_FAULT": "between-renames:3"})
    assert swap.returncode == -signal.SIGKILL and not (run / "last").exists() and (run / ".last.old").is_dir()
    assert read_state(run / "last").step == 3  # recovered: the state of the last completed swap
    # 4. Killed at random moments while training (the seed makes the moments repeatable).
    rng = random.Random(15)
    codes = [kill_at_random(run, rng) for _ in range(3)]
    assert codes.count(-signal.SIGKILL) >= 2, codes
    final = run_cli(*resume_args(run))
    assert final.returncode == 0, final.stderr
    assert "resuming" in final.stdout

    for name in ("last/model.safetensors", "best.safetensors"):
        a, b = load_file(tmp_path / "a" / name), load_file(run / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert read_state(run / "last").step == read_state(tmp_path / "a" / "last").step == 18
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no partial or old folder left


def test_bf16_run_killed_in_a_save_resumes_within_tolerance(tiny_data, tmp_path):
    """bf16 autocast: the same promise, stated with a tolerance (bf16 kernels need not be bit-reproducible
    on every device; on this CPU they usually are)."""
    args = lambda out: [*train_args(tiny_data, out), "--precision", "bf16", "--epochs", "1"]  # noqa: E731
    straight = run_cli(*args(tmp_path / "a"))
    assert straight.returncode == 0, straight.stderr
    killed = run_cli(*args(tmp_path / "b"), env={"PIXELWISE_FAULT": "in-save:3"})
    assert killed.returncode == -signal.SIGKILL and read_state(tmp_path / "b" / "last").step == 2
    resumed = run_cli(*resume_args(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(tmp_path / "a/last/model.safetensors"), load_file(tmp_path / "b/last/model.safetensors")
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-2, atol=1e-3), key
