"""Named points where a test can kill pixelwise with a real SIGKILL, to prove that a crash there is safe.

Set ``PIXELWISE_FAULT=<point>`` (or ``<point>:<n>``, the n-th time the point is reached, counting from 1)
in the environment of a pixelwise process; when it reaches that point it sends itself SIGKILL: no
``finally``, no ``atexit``, exactly what the OOM killer or a power cut does. Unset (always, outside the
tests), :func:`fault_point` costs one dictionary lookup.

The points: ``in-save`` (a training state half written), ``between-renames`` (the old ``last/`` moved
away, the new one not yet in place), ``in-validation`` (the first validation batch), ``before-first-save``
(the first training step, before anything is saved). See docs/reliability.md.

>>> fault_point("in-save")  # nothing happens unless PIXELWISE_FAULT names this point
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``PIXELWISE_FAULT`` names this point (and this is the n-th hit)."""
    wanted = os.environ.get("PIXELWISE_FAULT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
