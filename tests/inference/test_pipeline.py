"""Pipelined prediction: decoding ahead in threads, the backend running the next batch meanwhile, and the
very labels of the sequential predictor (batch by batch, one step after another)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import pixelwise
from pixelwise.core.errors import DataError
from pixelwise.core.optional import is_installed
from pixelwise.data.io import read_image, write_png
from pixelwise.data.presets import get_preset
from pixelwise.inference.pipeline import batched, prefetch
from pixelwise.inference.predictor import Predictor, class_ids
from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint


def checkpoint(folder, input_size):
    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=5, base_filters=4, depth=2)
    with torch.no_grad():  # confident, varied logits: ties would not test the order of the labels
        model.head.weight.mul_(20)
    path = folder / "best.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, get_preset("camvid"), input_size=input_size))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Seven images of three sizes: batches of 3 and 4 end with a partial batch, and batches mix sizes."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(7):
        paths.append(folder / f"image{k}.png")
        write_png(paths[-1], rng.integers(0, 256, (30 + 7 * (k % 3), 41 + 5 * (k % 2), 3), dtype=np.uint8))
    return paths


@pytest.fixture(scope="module", params=[(32, 48), None], ids=["resized", "own-size"])
def model_path(request, tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("ckpt"), request.param)


def labels(predictor, files, **options):
    result = list(predictor.predict_files(files, **options))
    assert [path for path, _ in result] == files  # in order, each once
    return [ids for _, ids in result]


BACKENDS = ["torch", pytest.param("openvino", marks=pytest.mark.skipif(
    not is_installed("openvino"), reason="pip install 'pixelwise[openvino]'"))]


def pipelining(backend: str, model_path) -> Predictor:
    """A predictor whose predict_files pipelines, on PyTorch too (which by default it does not: no gain there)."""
    predictor = Predictor(model_path, backend=backend, tile=None)
    predictor.backend.overlaps = True
    return predictor


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipelined_labels_are_the_sequential_ones(model_path, files, backend):
    predictor = pipelining(backend, model_path)
    for batch_size in (1, 2, 3, 4):  # 7 files: every one ends with a partial batch but 1
        sequential = labels(predictor, files, batch_size=batch_size, pipelined=False)
        pipelined = labels(predictor, files, batch_size=batch_size)
        assert all(np.array_equal(a, b) for a, b in zip(sequential, pipelined, strict=True)), batch_size
    assert [ids.shape for ids in sequential] == [read_image(p).shape[:2] for p in files]


def test_only_pipelined_jobs_of_several_batches_go_through_run_batches(model_path, files, monkeypatch):
    predictor = pipelining("torch", model_path)
    handed = []

    def run_batches(batches):
        for images in batches:
            handed.append(len(images))
            yield predictor.backend(images)

    monkeypatch.setattr(predictor.backend, "run_batches", run_batches)
    labels(predictor, files, batch_size=3, pipelined=False)
    assert handed == []
    labels(predictor, files, batch_size=3)
    assert handed == [3, 3, 1]
    labels(predictor, files, batch_size=len(files))  # one batch: nothing to overlap, the latency path
    assert handed == [3, 3, 1]
    predictor.backend.overlaps = False  # as PyTorch is by default
    labels(predictor, files, batch_size=3)
    assert handed == [3, 3, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_image_stops_both_paths_after_the_same_labels(model_path, files, tmp_path, backend):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    paths = [*files[:4], bad, *files[4:]]
    predictor = pipelining(backend, model_path)
    for pipelined in (False, True):
        done = []
        with pytest.raises(DataError, match="bad.png"):
            for path, _ in predictor.predict_files(paths, batch_size=2, pipelined=pipelined):
                done.append(path)
        assert done == files[:4], pipelined  # the batches before the bad image's, no more, no fewer


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipelined_probs_and_tta_match_the_sequential_ones(model_path, files, backend):
    predictor = pipelining(backend, model_path)
    for (a, pa), (b, pb) in zip(labels(predictor, files, return_probs=True, pipelined=False),
                                labels(predictor, files, return_probs=True), strict=True):
        assert np.array_equal(a, b) and np.array_equal(pa, pb)
    tta = Predictor(model_path, backend=backend, tile=None, tta_flip=True)  # TTA: several passes a batch
    tta.backend.overlaps = True
    assert all(np.array_equal(a, b) for a, b in zip(labels(tta, files, batch_size=3, pipelined=False),
                                                    labels(tta, files, batch_size=3), strict=True))


def test_tiled_prediction_is_untouched(tmp_path, files):
    predictor = Predictor(checkpoint(tmp_path, None), backend="torch", tile=(32, 32))
    tiled = labels(predictor, files, batch_size=3)
    alone = [predictor.predict(path, batch_size=3) for path in files]
    assert all(np.array_equal(a, b) for a, b in zip(tiled, alone, strict=True))


@pytest.mark.skipif(not is_installed("openvino"), reason="pip install 'pixelwise[openvino]'")
def test_openvino_async_batches_give_each_call_s_logits_and_survive_an_early_stop(tmp_path):
    from pixelwise.inference.export import export_checkpoint

    xml = export_checkpoint(checkpoint(tmp_path, None), fmt="openvino", out=tmp_path / "model.xml")
    predictor = Predictor(xml)
    backend = predictor.backend
    batches = [torch.randn(n, 3, 16, 24) for n in (2, 1, 3, 2, 2, 1)]  # more batches than requests
    for logits, images in zip(backend.run_batches(iter(batches)), batches, strict=True):
        assert torch.equal(logits, backend(images))  # the throughput and latency models agree bit for bit
    stream = backend.run_batches(iter(batches))
    first = next(stream)
    stream.close()  # the requests still running are waited for before their inputs are freed
    assert torch.equal(first, backend(batches[0]))


@pytest.mark.parametrize("classes", [1, 2, 11, 255, 256])
def test_class_ids_are_the_first_largest_logit_like_max_indices(classes):
    torch.manual_seed(classes)
    logits = torch.randn(classes, 19, 23)
    logits[:, :4] = 1.0  # every class tied: the first wins
    if classes > 3:
        logits[2, 10:] = logits[classes - 1, 10:]  # two classes tied for some pixels
    ids = class_ids(logits)
    assert ids.dtype == (torch.uint8 if classes <= 255 else torch.int32)
    assert torch.equal(ids.long(), logits.max(0).indices)


def test_class_ids_never_exceed_the_classes_on_nan():
    logits = torch.zeros(3, 2, 2)
    logits[1, 0, 0] = float("nan")
    assert int(class_ids(logits).max()) <= 2


def test_prefetch_keeps_order_and_stays_at_most_ahead_items_ahead():
    started = []

    def slow_square(x):
        started.append(x)
        time.sleep(0.01 * (x % 3))  # finishing out of order
        return x * x

    stream = prefetch(slow_square, range(20), ahead=3)
    assert next(stream) == 0
    time.sleep(0.1)
    assert len(started) <= 4  # the one handed over and 3 ahead, not all 20
    assert list(stream) == [x * x for x in range(1, 20)]


def test_prefetch_raises_an_item_s_error_at_that_item_and_stops():
    calls = []

    def fail_on_two(x):
        calls.append(x)
        if x == 2:
            raise ValueError("bad image 2")
        return x

    stream = prefetch(fail_on_two, range(100), ahead=2, threads=1)
    assert [next(stream), next(stream)] == [0, 1]
    with pytest.raises(ValueError, match="bad image 2"):
        next(stream)
    assert max(calls) < 10  # the rest was cancelled, not decoded


def test_prefetch_runs_in_other_threads():
    names = set(prefetch(lambda _: threading.current_thread().name, range(4), ahead=2))
    assert threading.current_thread().name not in names


def test_batched_ends_with_a_partial_batch():
    assert [len(b) for b in batched(iter(range(10)), 4)] == [4, 4, 2]
