"""Crash-safe writes: a result file is either the old one or the new one, never a part of either.

Every file pixelwise writes as a result (checkpoints, metrics, plots, exports, converted datasets)
goes through :func:`atomic_path`: the writer fills a temporary file in the same folder, which is
flushed to disk (fsync) and then renamed over the destination, and the folder's entry is synced too.
A crash, Ctrl-C or full disk at any moment leaves the previous file intact and no half-written file
under the destination's name; the temporary file of a failed write is removed.

>>> import tempfile, json
>>> path = Path(tempfile.mkdtemp()) / "metrics.json"
>>> write_json(path, {"miou": 0.5})
>>> json.loads(path.read_text())
{'miou': 0.5}
>>> sorted(p.name for p in path.parent.iterdir())
['metrics.json']
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixelwise.core.faults import fault_point


def make_readable(path: str | Path) -> None:
    """Give a file the permissions of a normal new file (safetensors and mkstemp write 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _staging_beside(dest: Path) -> Path:
    """A new private hidden folder ``.<name>-*.partial`` beside ``dest``, on the same file system (one rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}-", suffix=".partial", dir=dest.parent))


def _make_folder_readable(folder: Path) -> None:
    """mkdtemp makes a folder private; a result folder is readable like any other (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def fsync_path(path: str | Path) -> None:
    """Flush a file, or a folder's entries, to disk (a no-op where the OS cannot open folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename is still atomic there
    finally:
        os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its suffix (writers such as cv2 and matplotlib choose the
    format by it) and holds the process id (two processes writing one file do not share a temp file)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path``.

    ``durable=False`` skips the two fsyncs: the rename is still atomic, but a power cut may lose the
    newest files. For bulk outputs that are cheap to make again (thousands of predicted masks), where an
    fsync per file would cost more than the encoding.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("new")
    >>> target.read_text()
    'new'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        make_readable(tmp)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a lost permission: say the file the user knows, not the temporary
        tmp.unlink(missing_ok=True)
        raise _renamed(e, tmp, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent)


def _renamed(error: OSError, temporary: Path, final: Path) -> OSError:
    """``error`` naming ``final`` where it names ``temporary`` (or a file inside it) or no file at all (a
    failed ``write`` names none); the same subclass."""
    if error.errno is None:
        return error
    name = Path(error.filename) if error.filename is not None else temporary
    if name == temporary:
        name = final
    elif name.is_relative_to(temporary):
        name = final / name.relative_to(temporary)
    else:
        return error
    return OSError(error.errno, error.strerror, str(name))  # OSError(errno, ...) makes the right subclass


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``durable``: see :func:`atomic_path`)."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode())


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2))


def publish_folder(staging: str | Path, dest: str | Path) -> None:
    """Move a fully written ``staging`` folder to ``dest`` (which must not exist, or be an empty folder).

    Both live in the same parent, so the rename is atomic: ``dest`` appears complete or not at all.
    """
    staging, dest = Path(staging), Path(dest)
    for file in staging.rglob("*"):
        if file.is_file():
            fsync_path(file)
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    os.replace(staging, dest)
    fsync_path(dest.parent)


@contextlib.contextmanager
def staged_folder(dest: str | Path) -> Iterator[Path]:
    """Yield a new private folder beside ``dest`` to fill; when the block ends without an error it becomes
    ``dest`` (see :func:`publish_folder`), otherwise it is removed. A crash leaves at most a hidden
    ``.<name>-*.partial`` folder, never a half-filled ``dest``.

    >>> import tempfile
    >>> dest = Path(tempfile.mkdtemp()) / "dataset"
    >>> with staged_folder(dest) as work:
    ...     _ = (work / "classes.yaml").write_text("classes: []")
    >>> sorted(p.name for p in dest.iterdir())
    ['classes.yaml']
    """
    dest = Path(dest)
    staging = _staging_beside(dest)
    try:
        yield staging
        _make_folder_readable(staging)
        publish_folder(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_quietly(path: str | Path) -> None:
    """Remove a file or folder tree if it exists; errors are ignored (used to clean up temporaries)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _old_copy(dest: Path) -> Path:
    """Where :func:`replaced_folder` parks the previous ``dest`` between its two renames."""
    return dest.with_name(f".{dest.name}.old")


def current_folder(dest: str | Path) -> Path:
    """Where the newest complete copy of a :func:`replaced_folder` is, without changing anything (safe while
    a writer is at work): ``dest``, or ``.<name>.old`` when a swap was caught between its two renames."""
    dest = Path(dest)
    old = _old_copy(dest)
    return old if not dest.exists() and old.is_dir() else dest


def recover_folder(dest: str | Path) -> Path:
    """Finish or undo a :func:`replaced_folder` swap that a crash interrupted; returns ``dest``.

    A crash between the swap's two renames leaves no ``dest`` but a complete ``.<name>.old``: that one is
    put back. A crash after them leaves a stale ``.<name>.old`` beside the new ``dest``: it is removed,
    as are unfinished ``.<name>-*.partial`` folders. Safe to call when nothing was interrupted; for the
    one process that writes ``dest`` (a reader uses :func:`current_folder`).

    >>> import tempfile
    >>> dest = Path(tempfile.mkdtemp()) / "last"
    >>> _old_copy(dest).mkdir()  # as a crash between the renames leaves it
    >>> recover_folder(dest).is_dir(), _old_copy(dest).exists()
    (True, False)
    """
    dest = Path(dest)
    old = _old_copy(dest)
    if old.is_dir() and not dest.exists():
        os.replace(old, dest)
        fsync_path(dest.parent)
    elif old.exists():
        remove_quietly(old)
    if dest.parent.is_dir():
        for partial in dest.parent.glob(f".{dest.name}-*.partial"):
            remove_quietly(partial)
    return dest


@contextlib.contextmanager
def replaced_folder(dest: str | Path) -> Iterator[Path]:
    """Like :func:`staged_folder`, but ``dest`` may exist: it is replaced as one unit.

    The new folder is written and synced beside ``dest``; then ``dest`` is renamed to ``.<name>.old``,
    the new one to ``dest``, and the old one removed. A reader (after :func:`recover_folder`) sees the
    old folder or the new one whole, never files of both; a crash at any moment loses at most the new one.

    >>> import tempfile
    >>> dest = Path(tempfile.mkdtemp()) / "last"
    >>> for step in ("1", "2"):
    ...     with replaced_folder(dest) as work:
    ...         _ = (work / "step.txt").write_text(step)
    >>> (dest / "step.txt").read_text(), sorted(p.name for p in dest.parent.iterdir())
    ('2', ['last'])
    """
    dest = recover_folder(dest)
    staging = _staging_beside(dest)
    try:
        yield staging
        _make_folder_readable(staging)
        for file in staging.rglob("*"):
            if file.is_file():
                fsync_path(file)
        fsync_path(staging)
        old = _old_copy(dest)
        if dest.exists():
            os.replace(dest, old)
        fault_point("between-renames")  # where a test kills us: no dest, only the old copy
        os.replace(staging, dest)
        fsync_path(dest.parent)
        remove_quietly(old)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise _renamed(e, staging, dest) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
