"""The model behind the server: one :class:`~pixelwise.inference.predictor.Predictor`, fed by a batcher.

Images that can share a forward pass (no tiling, same size after the resize to the model's input size,
same outputs wanted) are batched, never padded, so each gets the class ids it gets alone (see
:meth:`Predictor.predict_batch`), which are the ids ``pixelwise predict`` writes for the file. A tiled
request runs alone, its tiles batched ``max_batch`` at a time.

>>> import numpy as np, pixelwise
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.inference.predictor import Predictor
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> model.meta = CheckpointMeta.for_model(model, get_preset("binary"), input_size=(32, 32))
>>> service = ModelService(lambda: Predictor(model, precision="fp32"))   # built on the model's thread
>>> result = service.submit(np.zeros((50, 70, 3), np.uint8)).result()
>>> result.labels.shape, result.probs is None, result.batch_size
((50, 70), True, 1)
>>> service.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from pixelwise.core.errors import ConfigError
from pixelwise.core.version import __version__
from pixelwise.inference.predictor import Predictor
from pixelwise.serve.batcher import Batcher, Job

DEFAULT_MAX_PIXELS = 40_000_000


@dataclass
class Request:
    """What one request asks of the model."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    tile: tuple[int, int] | None  # tiled prediction with this tile, or None
    probs: bool  # also the class probabilities


@dataclass
class Prediction:
    """The model's answer to one request, with where its time went."""

    labels: np.ndarray  # (H, W) class ids
    probs: np.ndarray | None  # (classes, H, W) float32, when asked for
    queue_ms: float  # waiting for the model
    model_ms: float  # the forward pass of its batch (shared with the batch's other requests)
    batch_size: int  # requests in that batch


class ModelService:
    """A predictor behind a :class:`~pixelwise.serve.batcher.Batcher`; ``submit`` is safe from any thread.

    ``predictor`` is a :class:`Predictor` or a function that makes one, which is then called on the thread
    that runs the model, before the constructor returns (its errors are raised there). Give the function:
    measured here, a PyTorch model on the CPU ran a 128x160 U-Net in 25 ms on a thread other than the one
    that built it, and in 13 ms on its own (OpenVINO and onnxruntime do not care).
    """

    def __init__(self, predictor: Predictor | Callable[[], Predictor], max_batch: int = 8, queue: int = 64,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_wait: float = 0.005, workers: int | None = None) -> None:
        self.max_batch, self.max_pixels = max(1, max_batch), max_pixels
        self.predictor: Predictor | None = predictor if isinstance(predictor, Predictor) else None

        def load() -> None:
            if self.predictor is None:
                self.predictor = predictor()
            # One forward pass before serving: the runtime compiles (OpenVINO: 1-2 s) and warms up now,
            # not inside the first user's request.
            height, width = self.predictor.input_size or (64, 64)
            self.predictor.predict_batch([np.zeros((height, width, 3), np.uint8)])

        self.batcher = Batcher(self._run, self.max_batch, max_wait, queue, setup=load)
        workers = workers or self.default_workers()
        if workers > 1 and not self.predictor.backend.concurrent_calls:
            self.batcher.close()
            raise ConfigError(f"--workers {workers}: the {self.predictor.backend.name} backend runs one call at a "
                              "time; use --workers 1, or --backend openvino or onnxruntime")
        self.batcher.add_workers(workers - 1)

    def default_workers(self) -> int:
        """Threads running batches: 2 where the runtime takes calls from several threads (OpenVINO, onnxruntime),
        so that one batch's resizing, normalising and class ids (in torch, on this process's cores) overlap the
        forward pass of the next; 1 for PyTorch, whose threads would only contend for the same cores.
        Measured with the serve benchmark's U-Net on OpenVINO bf16 (2-core Xeon, 16 clients, --max-batch 8):
        285 requests/s on 2 workers, 241 on 1; compiled for two streams of one thread each instead, 254."""
        return 2 if self.predictor.backend.concurrent_calls else 1

    @property
    def default_tile(self) -> tuple[int, int] | None:
        """The tile of requests that name none: the predictor's own (as ``pixelwise predict`` without --tile)."""
        return self.predictor.tile

    def submit(self, image: np.ndarray, tile: tuple[int, int] | None = None, probs: bool = False) -> Future:
        """Queue one image; the future's result is a :class:`Prediction`. Raises ``QueueFull`` when full."""
        request = Request(image, tile, probs)
        return self.batcher.submit(Job(request, self._key(request)))

    def _key(self, request: Request) -> Hashable:
        """Requests with equal keys can share a batch; a tiled one shares with none (a fresh object is unique)."""
        if request.tile is not None:
            return object()
        size = self.predictor.input_size or request.image.shape[:2]
        return tuple(size), request.probs

    def _run(self, jobs: list[Job]) -> list[Prediction]:
        """Run one batch (called by a worker thread of the batcher; several at once only where the backend
        allows concurrent calls)."""
        first: Request = jobs[0].payload
        if first.tile is not None:
            results = [self.predictor.predict_tiled(first.image, first.tile, self.max_batch, first.probs)]
        else:
            results = self.predictor.predict_batch([job.payload.image for job in jobs], first.probs)
        model_ms = (time.perf_counter() - jobs[0].started_at) * 1e3
        answers = []
        for job, result in zip(jobs, results, strict=True):
            labels, probs = result if first.probs else (result, None)
            answers.append(Prediction(labels, probs, (job.started_at - job.queued_at) * 1e3, model_ms, len(jobs)))
        return answers

    def info(self) -> dict:
        """What ``GET /model`` says: the classes, input size, runtime and limits."""
        meta, backend = self.predictor.meta, self.predictor.backend
        return {
            "model": meta.model,
            "classes": [{"id": i, "name": c.name, "color": list(c.color)} for i, c in enumerate(meta.classes.classes)],
            "ignore_index": meta.classes.ignore_index,
            "input_size": list(meta.input_size) if meta.input_size else None,
            "predict_scale": meta.predict_scale,
            "tile": list(self.default_tile) if self.default_tile else None,
            "backend": backend.name,
            "precision": getattr(backend, "precision", "fp32"),
            "ensemble": meta.extra.get("ensemble"),
            "pixelwise_version": __version__,
            "max_batch": self.max_batch,
            "queue": self.batcher.capacity,
            "workers": self.batcher.workers,
            "max_pixels": self.max_pixels,
        }

    def close(self) -> None:
        """Finish the queued requests and stop the model's thread."""
        self.batcher.close()
