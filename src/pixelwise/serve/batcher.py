"""Dynamic batching: requests that arrive together share one forward pass on one model instance.

Every request becomes a :class:`Job` in a bounded queue; a worker thread takes the oldest job together with
up to ``max_batch - 1`` later jobs of the same ``key`` (jobs of one key can be stacked into one batch: same
resized size, same outputs) and runs them at once. There is one worker unless :meth:`Batcher.add_workers`
adds more, for a run function that may be called from several threads at once: then one batch's resizing and
class ids run while another's forward pass does. A full queue refuses a job at once (:class:`QueueFull`, which
the server answers with 429), so a burst cannot grow memory or latency without bound.

The worker waits for more jobs (at most ``max_wait`` seconds) only while requests it was told about are
still on their way (:meth:`Batcher.incoming`: being read and decoded): a lone client never waits for
company that is not coming, and under load a batch fills from requests that are already arriving.

>>> batcher = Batcher(lambda jobs: [job.payload * 2 for job in jobs], max_batch=4)
>>> batcher.submit(Job(payload=21)).result()
42
>>> batcher.close()
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The queue holds its maximum of waiting jobs; ``retry_after`` is a guess of the seconds until it drains."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"queue full; retry after {retry_after} s")
        self.retry_after = retry_after


class Closed(Exception):
    """The batcher is shutting down and takes no new jobs."""


@dataclass(eq=False)
class Job:
    """One request's work: ``payload`` for the run function, ``key`` says which jobs may share a batch."""

    payload: Any
    key: Hashable = None
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)
    started_at: float = 0.0  # when its batch started to run
    batch_size: int = 0  # how many jobs its batch held


class Batcher:
    """A bounded job queue in front of one worker thread that calls ``run(jobs) -> results`` per batch.

    ``run`` gets 1 to ``max_batch`` jobs of one key and returns one result per job, in order; an exception
    it raises becomes each of those jobs' exception. ``capacity`` bounds the jobs waiting (not counting the
    batch being run). ``setup``, if given, runs first on the worker thread (e.g. to load the model there);
    the constructor waits for it and raises what it raised.
    """

    def __init__(self, run: Callable[[list[Job]], list[Any]], max_batch: int = 8, max_wait: float = 0.005,
                 capacity: int = 64, setup: Callable[[], None] | None = None) -> None:
        self.run, self.max_batch, self.max_wait, self.capacity = run, max(1, max_batch), max_wait, max(1, capacity)
        self._jobs: deque[Job] = deque()
        self._incoming = 0  # requests announced by incoming() that have not been submitted yet
        self._cond = threading.Condition()
        self._closed = False
        self._batch_seconds = 0.0  # running mean of a batch's duration, for Retry-After
        self._threads: list[threading.Thread] = []
        ready: Future = Future()
        self._start_worker(setup, ready)
        ready.result()  # the setup's exception, if any, is raised here

    def _start_worker(self, setup: Callable[[], None] | None, ready: Future) -> None:
        thread = threading.Thread(target=self._work, args=(setup, ready), daemon=True,
                                  name=f"pixelwise-model-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def add_workers(self, count: int) -> None:
        """Start ``count`` more worker threads; only for a ``run`` that is safe to call from several at once."""
        for _ in range(count):
            ready: Future = Future()
            self._start_worker(None, ready)
            ready.result()

    @property
    def workers(self) -> int:
        """How many worker threads run batches."""
        return len(self._threads)

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Announce a request while it is read and decoded, so that the worker may wait for it."""
        with self._cond:
            self._incoming += 1
        try:
            yield
        finally:
            with self._cond:
                self._incoming -= 1
                self._cond.notify_all()

    def submit(self, job: Job) -> Future:
        """Queue ``job``; its future gets the result. Raises :class:`QueueFull` or :class:`Closed` at once."""
        with self._cond:
            if self._closed:
                raise Closed("shutting down")
            if len(self._jobs) >= self.capacity:
                batches = len(self._jobs) / self.max_batch / len(self._threads) + 1
                raise QueueFull(max(1, round(batches * self._batch_seconds + 0.5)))
            job.queued_at = time.perf_counter()
            self._jobs.append(job)
            self._cond.notify_all()
        return job.future

    def waiting(self) -> int:
        """Jobs in the queue now (not counting the batch being run)."""
        with self._cond:
            return len(self._jobs)

    def close(self, timeout: float | None = None) -> None:
        """Take no new jobs, finish those queued, stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _next_batch(self) -> list[Job] | None:
        """The next batch (the oldest job and later ones of its key), or None once closed and drained."""
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if not self._jobs:
                return None
            key = self._jobs[0].key
            deadline = time.perf_counter() + self.max_wait
            while (self._incoming and not self._closed and self.max_batch > 1
                   and sum(job.key == key for job in self._jobs) < self.max_batch):
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [job for job in self._jobs if job.key == key][: self.max_batch]
            for job in batch:
                self._jobs.remove(job)
            return batch

    def _work(self, setup: Callable[[], None] | None, ready: Future) -> None:
        try:
            if setup is not None:
                setup()
        except BaseException as e:  # handed to the constructor, which raises it
            ready.set_exception(e)
            return
        ready.set_result(None)
        while (batch := self._next_batch()) is not None:
            start = time.perf_counter()
            for job in batch:
                job.started_at, job.batch_size = start, len(batch)
            try:
                results = list(self.run(batch))
                if len(results) != len(batch):
                    raise RuntimeError(f"the run function returned {len(results)} results for {len(batch)} jobs")
            except Exception as e:  # every error goes to the requests waiting for it; the worker carries on
                for job in batch:
                    job.future.set_exception(e)
            else:
                for job, result in zip(batch, results, strict=True):
                    job.future.set_result(result)
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.perf_counter() - start)
