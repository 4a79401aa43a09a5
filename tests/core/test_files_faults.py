"""The crash-safe writers under real faults: SIGKILL between the renames of a folder swap, and a full
disk (RLIMIT_FSIZE, the per-process file size limit: a write past it fails as on a full disk, EFBIG).
Each leaves the previous file or folder whole and no temporary file behind."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pixelwise.core.files import current_folder, recover_folder, replaced_folder, write_bytes


def run_python(code: str, env: dict[str, str] | None = None, file_limit: int | None = None
               ) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, optionally with a file size limit (SIGXFSZ ignored, so the write
    fails with EFBIG instead of the signal killing the process)."""
    def limit() -> None:
        if file_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, preexec_fn=limit, timeout=120)


def swap_code(dest: Path, text: str) -> str:
    return f"""
        from pathlib import Path
        from pixelwise.core.files import replaced_folder
        with replaced_folder(Path({str(dest)!r})) as work:
            (work / "a.txt").write_text({text!r})
            (work / "b.txt").write_text({text!r})
    """


def test_sigkill_between_the_renames_of_a_folder_swap_loses_nothing(tmp_path):
    dest = tmp_path / "last"
    assert run_python(swap_code(dest, "one")).returncode == 0
    killed = run_python(swap_code(dest, "two"), env={"PIXELWISE_FAULT": "between-renames"})
    assert killed.returncode == -signal.SIGKILL
    assert not dest.exists() and (current_folder(dest) / "a.txt").read_text() == "one"  # readers find it
    recover_folder(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert [(dest / n).read_text() for n in ("a.txt", "b.txt")] == ["one", "one"]


def test_sigkill_while_a_folder_is_written_keeps_the_old_one(tmp_path):
    dest = tmp_path / "last"
    assert run_python(swap_code(dest, "one")).returncode == 0
    code = swap_code(dest, "two").replace('(work / "b.txt")', 'import os, signal; os.kill(os.getpid(), '
                                           'signal.SIGKILL); (work / "b.txt")')
    assert run_python(code).returncode == -signal.SIGKILL
    assert (dest / "a.txt").read_text() == "one" and (dest / "b.txt").read_text() == "one"
    with replaced_folder(dest) as work:  # the next writer clears the dead one's partial folder
        (work / "a.txt").write_text("three")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_a_full_disk_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "best.safetensors"
    write_bytes(path, b"previous result")
    result = run_python(f"""
        from pixelwise.core.files import write_bytes
        write_bytes({str(path)!r}, b"x" * 100_000)
    """, file_limit=10_000)
    assert result.returncode == 1 and "File too large" in result.stderr
    assert path.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors"]


def test_a_full_disk_while_a_folder_is_swapped_keeps_the_old_one(tmp_path):
    dest = tmp_path / "last"
    assert run_python(swap_code(dest, "one")).returncode == 0
    result = run_python(swap_code(dest, "two" * 10_000), file_limit=10_000)
    assert result.returncode == 1 and "File too large" in result.stderr
    assert (dest / "a.txt").read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_file_where_a_folder_should_be_is_an_os_error_and_writes_nothing(tmp_path, target):
    blocker = tmp_path / "blocker"
    blocker.write_text("in the way")
    with pytest.raises(OSError):
        if target == "file":
            write_bytes(blocker / "metrics.json", b"{}")
        else:
            with replaced_folder(blocker / "last") as work:
                (work / "a.txt").write_text("x")
    assert blocker.read_text() == "in the way" and sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
