"""Helpers shared by the tests (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_MODEL = {"base_filters": 4, "depth": 3}


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m pixelwise ARGS`` in a fresh process; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "pixelwise", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def run_main(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI's ``main`` in this process (fast); same result shape as :func:`run_cli`."""
    import contextlib
    import io

    from pixelwise.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["pixelwise", *args], code, out.getvalue(), err.getvalue())
