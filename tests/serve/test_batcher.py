"""The batcher alone, with toy run functions: batches, errors, a full queue, shutdown."""

from __future__ import annotations

import threading

import pytest

from pixelwise.serve.batcher import Batcher, Closed, Job, QueueFull


def test_setup_runs_on_the_worker_thread_and_its_error_reaches_the_constructor():
    seen = []
    batcher = Batcher(lambda jobs: [threading.current_thread().name for _ in jobs],
                      setup=lambda: seen.append(threading.current_thread().name))
    assert batcher.submit(Job(None)).result() == seen[0] == "pixelwise-model-0"
    batcher.close()

    def no_model() -> None:
        raise ValueError("no model")

    with pytest.raises(ValueError, match="no model"):
        Batcher(lambda jobs: jobs, setup=no_model)


def test_added_workers_run_batches_at_the_same_time_and_all_drain_on_close():
    both_running = threading.Barrier(2, timeout=30)  # passes only when two batches run at once

    def run(jobs):
        both_running.wait()
        return [job.payload * 10 for job in jobs]

    batcher = Batcher(run, max_batch=1)
    batcher.add_workers(1)
    assert batcher.workers == 2
    futures = [batcher.submit(Job(k)) for k in range(4)]
    batcher.close()
    assert [f.result() for f in futures] == [0, 10, 20, 30]


def test_an_error_fails_its_batch_only():
    def run(jobs):
        if any(job.payload == "bad" for job in jobs):
            raise RuntimeError("broken input")
        return [job.payload.upper() for job in jobs]

    batcher = Batcher(run, max_batch=1)
    bad, good = batcher.submit(Job("bad")), batcher.submit(Job("ok"))
    with pytest.raises(RuntimeError, match="broken input"):
        bad.result()
    assert good.result() == "OK"
    batcher.close()


def test_full_queue_and_shutdown():
    gate = threading.Event()
    batcher = Batcher(lambda jobs: [gate.wait(60) and job.payload for job in jobs], max_batch=2, capacity=2)
    with batcher.incoming():  # hold the first batch open until all are queued
        first = [batcher.submit(Job(k)) for k in range(2)]
    while batcher.waiting():  # the worker took them; two more fit in the queue, a fifth does not
        pass
    queued = [batcher.submit(Job(k)) for k in (2, 3)]
    with pytest.raises(QueueFull) as refused:
        batcher.submit(Job(4))
    assert refused.value.retry_after >= 1
    gate.set()
    batcher.close()  # the queued jobs are answered before the worker stops
    assert [f.result() for f in first + queued] == [0, 1, 2, 3]
    with pytest.raises(Closed):
        batcher.submit(Job(5))


def test_jobs_of_another_key_wait_for_their_own_batch():
    sizes = []
    batcher = Batcher(lambda jobs: [sizes.append((jobs[0].key, len(jobs))) or None for _ in jobs], max_batch=4,
                      max_wait=60)
    with batcher.incoming():
        futures = [batcher.submit(Job(k, key="small" if k % 2 else "large")) for k in range(6)]
    for future in futures:
        future.result()
    batcher.close()
    assert sorted(set(sizes)) == [("large", 3), ("small", 3)]
