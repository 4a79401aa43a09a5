"""User-facing errors.

Anything a user can fix (a missing file, a bad option, a corrupt checkpoint) raises
:class:`PixelwiseError` with a one-line message that names the thing and the fix. The CLI
prints that line and exits non-zero; it never shows a traceback for these.

>>> try:
...     raise DataError("masks/a.png: value 7 is not a class; add it to classes.yaml")
... except PixelwiseError as e:
...     print(one_line(e))
masks/a.png: value 7 is not a class; add it to classes.yaml
"""

from __future__ import annotations

import errno


class PixelwiseError(Exception):
    """Base class for errors caused by input the user can fix."""


class DataError(PixelwiseError):
    """A dataset on disk is missing, malformed or inconsistent."""


class ConfigError(PixelwiseError):
    """An option or recipe value is unknown or invalid."""


class CheckpointError(PixelwiseError):
    """A checkpoint file is missing, truncated or not a pixelwise checkpoint."""


def one_line(error: BaseException) -> str:
    """The single line to show a user for ``error``.

    DataLoader workers re-raise an exception as ``type(e)(<traceback text>)``; the
    original message is then the last line, after ``ErrorType: ``.
    """
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split("\n")) if text else type(error).__name__


# What to try for the errors a machine, not a bug, causes (disk full, permissions, a file in the way).
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space (earlier results are untouched) and run it again",
    errno.EDQUOT: "the disk quota is spent; free some space (earlier results are untouched) and run it again",
    errno.EFBIG: "the file grew past this process's size limit (ulimit -f); raise it or write elsewhere",
    errno.EACCES: "permission denied; choose a folder you can write to (or read)",
    errno.EPERM: "operation not permitted; choose a folder you can write to",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.ENOTDIR: "a file is where a folder should be; move it away or choose another path",
    errno.EEXIST: "something already exists there; move it away or choose another path",
    errno.EISDIR: "a folder is where a file should be; move it away or choose another path",
}


def describe_os_error(error: OSError) -> str:
    """One line for an error of the machine (not of pixelwise): the path, what happened, what to try.

    >>> import errno
    >>> describe_os_error(OSError(errno.EROFS, "Read-only file system", "runs/a"))
    'runs/a: Read-only file system; the file system is read-only; choose another --out'
    """
    path = error.filename if error.filename is not None else None
    what = error.strerror or str(error) or type(error).__name__
    hint = _OS_HINTS.get(error.errno or -1)
    return f"{path}: " * (path is not None) + what + (f"; {hint}" if hint else "")
