"""Disk and permission faults through the command line: one `error:` line naming the path, exit code 2,
no traceback, the run's previous best.safetensors and last/ untouched and no half-written file left."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pixelwise.testing import TINY_MODEL, assert_one_line_error, run_main
from pixelwise.training.config import TrainConfig
from pixelwise.training.trainer import train


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_disk_full_during_training_keeps_the_earlier_results(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(tiny_data), out=str(run), img_size=(32, 48), batch_size=4, workers=0, epochs=1,
                      progress=False, model_kwargs=TINY_MODEL, precision="fp32", device="cpu", cache=False))
    before = snapshot(run)

    def small_disk() -> None:  # the files of the first epoch fit; the checkpoints of the next do not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = subprocess.run([sys.executable, "-m", "pixelwise", "train", "--out", str(run), "--resume", "--epochs",
                             "2", "--save-every", "epoch"], capture_output=True, text=True, preexec_fn=small_disk,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=300)
    assert_one_line_error(result, str(run), "File too large")
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k in before} == before  # best, last/, metrics: untouched
    assert not [name for name in after if name.startswith(".") or "/." in name]  # no temporary left


def test_a_file_where_the_run_folder_should_be(tiny_data, tmp_path):
    (tmp_path / "runs").write_text("a file, not a folder")
    result = run_main("train", "--data", str(tiny_data), "--out", str(tmp_path / "runs" / "a"), "--epochs", "1",
                      "--img-size", "32x48", "--workers", "0", "--no-progress", "--device", "cpu")
    assert_one_line_error(result, str(tmp_path / "runs"), "a file is where a folder should be")
    assert (tmp_path / "runs").read_text() == "a file, not a folder"


def without_dac_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE from the bounding set, so that even root obeys a
    folder's permission bits (root otherwise writes into a 0555 folder, and CI runs as root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def permission_bits_bind() -> bool:
    """Whether a child process can be made to obey permission bits (always for non-root users)."""
    if os.geteuid() != 0:
        return True
    try:
        return subprocess.run(["true"], preexec_fn=without_dac_override).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not permission_bits_bind(), reason="root without CAP_SETPCAP ignores permission bits")
def test_a_read_only_output_folder(tiny_data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = subprocess.run([sys.executable, "-m", "pixelwise", "train", "--data", str(tiny_data), "--out",
                                 str(locked / "run"), "--epochs", "1", "--img-size", "32x48", "--workers", "0",
                                 "--no-progress", "--device", "cpu"], capture_output=True, text=True, timeout=300,
                                preexec_fn=without_dac_override if os.geteuid() == 0 else None)
    finally:
        locked.chmod(0o755)
    assert_one_line_error(result, str(locked / "run"), "ermission denied")
    assert not any(locked.iterdir())
