"""``openvino``: OpenVINO IR (and ONNX) files on the CPU.

The model is compiled for the way it is used, on first use: single calls (``backend(images)``: a tile,
a served request) get OpenVINO's ``LATENCY`` hint, one stream running each call on every core;
:meth:`OpenVinoBackend.run_batches` (a folder of images) gets the ``THROUGHPUT`` hint, several streams
of fewer threads each, fed one image per asynchronous infer request so the next images run while Python
turns this batch's logits into labels. On the development 2-core CPU, shared with other jobs, two streams of one
thread each (THROUGHPUT) ran the CamVid U-Net 2.0x faster than one stream of two (LATENCY): a preempted
thread stalls only its own stream, not a barrier of all. Both gave the same logits, bit for bit.
Single calls may come from several threads at once (a server's workers): each thread gets its own infer
request, and the stream runs one while the other thread prepares its next batch.

>>> OpenVinoBackend.suffixes(), OpenVinoBackend.cpu_only
(('.xml', '.onnx'), True)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelwise.core.device import cpu_has_fast_bf16
from pixelwise.core.errors import ConfigError
from pixelwise.core.optional import import_optional
from pixelwise.inference.backends.base import Backend, quantized_precision, register_backend
from pixelwise.inference.openvino_core import openvino_core
from pixelwise.models.checkpoint import CheckpointMeta


@register_backend("openvino")
class OpenVinoBackend(Backend):
    """OpenVINO on the CPU; bf16 inference where the CPU has native bf16 and precision allows it."""

    title = "OpenVINO"
    export_format = "openvino"
    also_opens = (".onnx",)  # OpenVINO compiles ONNX files directly
    cpu_only = True
    overlaps = True  # run_batches: asynchronous requests
    concurrent_calls = True  # one infer request per calling thread

    def __init__(self, path: Path, meta: CheckpointMeta, precision: str = "auto") -> None:
        import_optional("openvino", extra="openvino", purpose="--backend openvino", hint=" or use --backend torch")
        self.meta, self.path = meta, path
        if precision == "fp16":
            raise ConfigError("--precision fp16 needs a CUDA GPU; OpenVINO on a CPU runs bf16 or fp32")
        bf16 = precision == "bf16" or (precision == "auto" and cpu_has_fast_bf16())
        self.float_precision = "bf16" if bf16 else "fp32"  # what the layers that are not int8 compute in
        self.precision = quantized_precision(meta, self.float_precision)
        self._compiled: dict[str, Any] = {}  # per performance hint, compiled on first use
        self._lock = threading.Lock()  # a server may call from several threads
        self._local = threading.local()  # each calling thread's infer request

    @classmethod
    def from_file(cls, path: Path, meta: CheckpointMeta, precision: str = "auto") -> OpenVinoBackend:
        return cls(path, meta, precision)

    def compiled_for(self, hint: str) -> Any:
        """The model compiled with ``PERFORMANCE_HINT`` ``hint`` (``"LATENCY"`` or ``"THROUGHPUT"``), once."""
        with self._lock:
            if hint not in self._compiled:
                config = {"INFERENCE_PRECISION_HINT": "bf16" if self.float_precision == "bf16" else "f32",
                          "PERFORMANCE_HINT": hint}
                self._compiled[hint] = openvino_core().compile_model(str(self.path), "CPU", config)
            return self._compiled[hint]

    @property
    def compiled(self) -> Any:
        """The model as single calls run it (the ``LATENCY`` hint)."""
        return self.compiled_for("LATENCY")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        request = getattr(self._local, "request", None)
        if request is None:  # the compiled model's own __call__ shares one request among all threads
            request = self._local.request = self.compiled.create_infer_request()
        # Copies both ways: by default OpenVINO keeps pointing at the input array inside its infer request
        # after the call, and that array is freed once we return (this crashed the process later on).
        logits = request.infer({0: images.float().cpu().numpy()}, share_inputs=False, share_outputs=False)[0]
        return torch.from_numpy(np.array(logits, dtype=np.float32, copy=True))

    def run_batches(self, batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Logits for each batch, in order, with every stream kept busy.

        Each image goes to OpenVINO as its own asynchronous request (one request per stream plus one), and
        the batch is put back together from them. One image per request rather than one batch: a batch
        runs on one stream while the other streams wait for the next, and at the end of a job the last
        batch runs on one stream alone. Measured on a 2-core CPU (CamVid U-Net IR, THROUGHPUT hint):
        38.8 img/s with requests of 4 images, 42.7 img/s with requests of one.
        """
        sizes: deque[int] = deque()  # images in each batch begun whose logits are not all handed over yet

        def images() -> Iterator[torch.Tensor]:
            for batch in batches:
                sizes.append(len(batch))
                yield from batch.split(1)

        return _whole_batches(self._run_images(images()), sizes)

    def _run_images(self, images: Iterator[torch.Tensor]) -> Generator[np.ndarray, None, None]:
        """The logits of each ``(1, C, H, W)`` image, in order, from asynchronous infer requests: each a view of
        its request's output, valid until this generator resumes (the request then takes another image).

        The request a new image needs is always the one that started longest ago, whose result is handed
        over first, which keeps the results in order.
        """
        compiled = self.compiled_for("THROUGHPUT")
        count = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") + 1
        idle = deque(compiled.create_infer_request() for _ in range(count))
        in_flight: deque[tuple[Any, np.ndarray]] = deque()  # (request, its input), oldest first
        try:
            for image in images:
                if not idle:
                    request, array = in_flight.popleft()
                    yield _result(request, array)
                    idle.append(request)
                array = np.ascontiguousarray(image.float().cpu().numpy())
                request = idle.popleft()
                # share_inputs: no copy; `array` stays referenced in `in_flight` until its request is waited.
                request.start_async({0: array}, share_inputs=True)
                in_flight.append((request, array))
            while in_flight:
                yield _result(*in_flight.popleft())
        finally:
            for request, _ in in_flight:  # stopped early or failed: no request may outlive its input array
                request.wait()


def _whole_batches(image_logits: Generator[np.ndarray, None, None], sizes: deque[int]) -> Iterator[torch.Tensor]:
    """``image_logits`` (one image each) copied into batches of ``sizes``, taken from its left.

    Each image's logits are copied once, straight into their place in the batch: they may be a view of an infer
    request's output, which the request overwrites once ``image_logits`` resumes.

    >>> ones = (np.ones((1, 2), np.float32) for _ in range(3))
    >>> [tuple(batch.shape) for batch in _whole_batches(ones, deque([2, 1]))]
    [(2, 2), (1, 2)]
    """
    batch, done = None, 0
    try:
        for logits in image_logits:
            if batch is None:
                batch = torch.empty((sizes[0], *logits.shape[1:]), dtype=torch.float32)
            batch[done].copy_(torch.from_numpy(logits)[0])
            done += 1
            if done == sizes[0]:
                sizes.popleft()
                yield batch
                batch, done = None, 0
    finally:  # the caller stopped early: the requests still running are waited for now, not at garbage collection
        image_logits.close()


def _result(request: Any, array: np.ndarray) -> np.ndarray:
    """The finished ``request``'s ``(1, C, H, W)`` logits: a view of its output, valid until it runs again."""
    request.wait()
    return request.get_output_tensor(0).data
