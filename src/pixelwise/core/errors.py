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
