"""What ``predict`` writes for each image (``--outputs``), and a thread pool that writes it.

Each output is registered with ``@register_output(name)``: a function from one image's
:class:`Prediction` to the file's bytes. The built-in ones, in the order their files are written:

* ``labels``: ``<stem>_labels.png``, the class ids (an index PNG);
* ``color``: ``<stem>_color.png``, the class ids in the classes' colours;
* ``overlay``: ``<stem>_overlay.png``, the colours blended into the photo, each class outlined;
* ``probs``: ``<stem>_probs.npz``, the class probabilities (float16);
* ``uncertainty``: ``<stem>_uncertainty.png``, 0 certain .. 255 most uncertain.

``predict`` writes ``labels`` and ``overlay`` unless told otherwise (:data:`DEFAULT_OUTPUTS`).

Drawing an overlay and encoding its PNG take about as long as the model takes for the image, so
:class:`OutputWriter` does them in a few threads while the caller predicts the next batch: OpenCV's PNG
encoder and numpy's whole-array operations release the GIL, so the threads really run alongside. The
PNGs are encoded with OpenCV's defaults (zlib level 1, its fastest compressing setting: level 0 makes
files 2-30x larger, level 6 takes 4-7x as long for 5-30% smaller files, measured on CamVid); every file is
written atomically (:mod:`pixelwise.core.files`).

>>> parse_outputs("overlay,labels"), parse_outputs(["probs"])
(('labels', 'overlay'), ('probs',))
>>> [p.name for p in output_paths(Path("out"), [Path("a/x.png"), Path("b/x.jpg")], ["labels"])[1].values()]
['x-2_labels.png']
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelwise.core.draw import colorize, overlay
from pixelwise.core.errors import ConfigError
from pixelwise.core.files import write_bytes
from pixelwise.core.registry import Registry
from pixelwise.data.io import encode_png, read_image
from pixelwise.inference.soft_outputs import probs_npz, uncertainty_png


@dataclass(frozen=True)
class Prediction:
    """One image's prediction: everything an output is made from."""

    image: Path  # the input file (the overlay draws on it)
    labels: np.ndarray  # (H, W) class ids at the image's size
    probs: np.ndarray | None  # (classes, H, W) float32 probabilities, when an output needs them
    palette: np.ndarray  # (classes, 3) uint8
    class_names: Sequence[str]
    uncertainty: str = "entropy"  # what the uncertainty output measures: entropy or margin


@dataclass(frozen=True)
class OutputKind:
    """An output: its file's suffix, whether it needs the probabilities, and how its bytes are made."""

    suffix: str
    needs_probs: bool
    render: Callable[[Prediction], bytes]


OUTPUTS: Registry[OutputKind] = Registry("output", hint="comma-separated, e.g. --outputs labels,overlay")
DEFAULT_OUTPUTS = ("labels", "overlay")


def register_output(name: str, suffix: str = ".png", needs_probs: bool = False):
    """Decorator: register ``render(prediction) -> bytes`` as the output ``name`` (``<stem>_<name><suffix>``)."""

    def add(render: Callable[[Prediction], bytes]) -> Callable[[Prediction], bytes]:
        OUTPUTS.add(name, OutputKind(suffix, needs_probs, render))
        return render

    return add


@register_output("labels")
def labels_png(p: Prediction) -> bytes:
    """The class ids as an index PNG (what ``read_mask`` reads back)."""
    return encode_png(p.labels)


@register_output("color")
def color_png(p: Prediction) -> bytes:
    """The class ids in the classes' colours."""
    return encode_png(colorize(p.labels, p.palette))


@register_output("overlay")
def overlay_png(p: Prediction) -> bytes:
    """The colours blended into the photo, each class outlined (:func:`pixelwise.core.draw.overlay`)."""
    # The photo is decoded again here, in a writer thread, rather than kept from the prediction: the
    # predictor holds images resized to the model's size, and keeping originals would hold a batch more.
    return encode_png(overlay(read_image(p.image), p.labels, p.palette))


@register_output("probs", suffix=".npz", needs_probs=True)
def probs_file(p: Prediction) -> bytes:
    """The class probabilities, float16, with the class names (:func:`probs_npz`)."""
    return probs_npz(p.probs, p.class_names)


@register_output("uncertainty", needs_probs=True)
def uncertainty_file(p: Prediction) -> bytes:
    """The uncertainty map as a grey PNG (:func:`uncertainty_png`)."""
    return uncertainty_png(p.probs, p.uncertainty)


def parse_outputs(outputs: str | Sequence[str]) -> tuple[str, ...]:
    """``--outputs``: comma-separated names (or a list of them), in the order the files are written."""
    names = [n.strip() for n in outputs.split(",")] if isinstance(outputs, str) else [str(n) for n in outputs]
    unknown = next((n for n in names if n not in OUTPUTS), None)
    if unknown is not None or not names:
        raise ConfigError(f"--outputs '{','.join(names)}': '{unknown or ''}' is not an output; name one or more of "
                          f"{', '.join(OUTPUTS.names())}, comma-separated (default: {','.join(DEFAULT_OUTPUTS)})")
    return tuple(name for name in OUTPUTS if name in names)


def output_paths(out_dir: Path, inputs: Sequence[Path],
                 kinds: Sequence[str] = DEFAULT_OUTPUTS) -> list[dict[str, Path]]:
    """Per input, per output kind: ``<stem>_<kind><suffix>`` in ``out_dir``; a stem met again gets ``-2``, ``-3``."""
    seen: dict[str, int] = {}
    result = []
    for path in inputs:
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:  # same name from two folders: keep both
            stem = f"{stem}-{seen[stem]}"
        result.append({kind: out_dir / f"{stem}_{kind}{OUTPUTS.get(kind).suffix}" for kind in kinds})
    return result


def write_outputs(prediction: Prediction, targets: dict[str, Path]) -> None:
    """Render and write each output of ``targets`` (kind -> path) for one image, each file atomically.

    Not durable (no fsync): predictions come by the thousand, and an fsync each would cost more than the encoding.
    """
    for kind, path in targets.items():
        write_bytes(path, OUTPUTS.get(kind).render(prediction), durable=False)


class OutputWriter:
    """Writes images' outputs in ``threads`` background threads, at most ``2 x threads`` images waiting.

    A failed write is raised by the next :meth:`submit` or by :meth:`close` (the ``with`` block's end),
    in the caller's thread; leaving the block early drops the writes not yet started.
    """

    def __init__(self, threads: int | None = None) -> None:
        # Two threads even on two cores: one encodes while the other waits on the disk; more would take
        # cores from the model's threads for no gain.
        self.threads = threads or max(2, min(4, (os.cpu_count() or 2) // 2))
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pixelwise-write")
        self.pending: deque[Future] = deque()

    def submit(self, prediction: Prediction, targets: dict[str, Path]) -> None:
        """Queue one image's outputs; waits while ``2 x threads`` images are queued (bounded memory)."""
        while len(self.pending) >= 2 * self.threads:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write_outputs, prediction, targets))

    def close(self) -> None:
        """Wait for every queued write; the first failure is raised."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self.close()
        else:  # the prediction failed or was interrupted: finish what runs, start nothing more
            self.pool.shutdown(wait=True, cancel_futures=True)
