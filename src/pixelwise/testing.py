"""Helpers for testing pixelwise and code that extends it (a plugin's format, model, loss or backend).

``run_cli`` runs the command in a fresh process, as a user does; ``run_main`` runs it in this process
(faster, same result shape). ``SMALL_MODEL_OPTIONS`` are settings that keep every built-in model tiny.

>>> result = run_main("models")
>>> result.returncode, "unet" in result.stdout
(0, True)
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pixelwise.cli.main import main

# A classic U-Net small enough to train in a second on 48x64 images.
TINY_MODEL: dict[str, Any] = {"base_filters": 4, "depth": 3}

# Small settings per built-in model so test suites stay fast; every built-in model appears here.
SMALL_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "unet": {"base_filters": 4, "depth": 3},
    "deeplabv3plus": {"encoder": "resnet18", "aspp_channels": 16, "decoder_channels": 16},
    "segnet": {"base_filters": 8},
    "attention_unet": {"base_filters": 4, "depth": 3},
    "sepres_unet": {"widths": [4, 8, 16]},
}
# Each model small, plus variants that exercise other code paths.
MODEL_VARIANTS: list[tuple[str, dict[str, Any]]] = [*SMALL_MODEL_OPTIONS.items()] + [
    ("unet", {"encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8]}),
    # No batch norm (the gate's W_g then has a bias), another upsampler, and input noise while training.
    ("attention_unet", {"base_filters": 4, "depth": 2, "batch_norm": False, "upsample": "bilinear",
                        "input_noise": 0.1}),
]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m pixelwise ARGS`` in a fresh process (``env`` entries added to this one's)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pixelwise", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


def start_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m pixelwise ARGS`` and return at once (to signal or kill it; see tests/training)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "pixelwise", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=cwd, env=full_env)


def run_main(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI's ``main`` in this process; same result shape as :func:`run_cli`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["pixelwise", *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A command that failed as pixelwise promises: exit code 2, one ``error: ...`` line on stderr containing
    every fragment (e.g. the file's path), no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
