"""The HTTP API through FastAPI's test client: every output, its agreement with `pixelwise predict`, the schema."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pixelwise.core.errors import ConfigError
from pixelwise.data.io import read_image
from pixelwise.data.rle import rle_decode
from pixelwise.testing import run_main


def post(client, path, output=None, **params):
    query = {"output": output, **params} if output else params
    with open(path, "rb") as f:
        return client.post("/predict", params=query, files={"image": (path.name, f.read(), "image/png")})


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.array(Image.open(io.BytesIO(response.content)))


def test_health_model_and_schema(client, served_checkpoint):
    assert client.get("/health").json() == {"status": "ok"}
    model = client.get("/model").json()
    assert [c["name"] for c in model["classes"]] == ["sky", "building", "road", "pavement", "tree", "car"]
    assert model["classes"][2] == {"id": 2, "name": "road", "color": [128, 64, 128]}
    assert model["input_size"] == [32, 48] and model["predict_scale"] == 1.0
    assert model["backend"] == "torch" and model["precision"] == "fp32"
    assert set(model) >= {"ignore_index", "pixelwise_version", "max_batch", "queue", "max_pixels"}
    schema = client.get("/openapi.json").json()
    assert {"/health", "/model", "/predict"} <= set(schema["paths"])
    parameters = {p["name"] for p in schema["paths"]["/predict"]["post"]["parameters"]}
    assert parameters == {"output", "uncertainty", "tile"}
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_labels_equal_what_predict_writes(client, served_checkpoint, street_png, tmp_path):
    """The default answer is the class-id PNG `pixelwise predict` writes for the same file and checkpoint."""
    out = run_main("predict", str(served_checkpoint), str(street_png), "--out", str(tmp_path), "--backend", "torch",
                   "--precision", "fp32", "--outputs", "labels,color,overlay", "--save-probs", "--save-uncertainty")
    assert out.returncode == 0, out.stderr
    labels = png(post(client, street_png))
    written = np.array(Image.open(tmp_path / "street_labels.png"))
    assert labels.shape == (96, 128) and np.array_equal(labels, written)
    assert len(np.unique(labels)) >= 2  # a real test: the model tells classes apart
    for kind in ("color", "overlay"):
        written = np.array(Image.open(tmp_path / f"street_{kind}.png"))
        assert np.array_equal(png(post(client, street_png, kind)), written)
    # The soft outputs too: the same maps as --save-probs and --save-uncertainty.
    answer = post(client, street_png, "probs")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-npz"
    probs, saved = np.load(io.BytesIO(answer.content)), np.load(tmp_path / "street_probs.npz")
    assert np.array_equal(probs["probs"], saved["probs"]) and probs["classes"].tolist() == saved["classes"].tolist()
    assert np.array_equal(png(post(client, street_png, "uncertainty")),
                          np.array(Image.open(tmp_path / "street_uncertainty.png")))


def test_json_output(client, street_png):
    answer = post(client, street_png, "json")
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["width"], summary["height"]) == (128, 96)
    assert summary["backend"] == "torch" and summary["batch_size"] >= 1
    assert set(summary["timing_ms"]) == {"decode", "queue", "model", "total"}
    labels = png(post(client, street_png))
    shares = [c["share"] for c in summary["classes"]]
    assert sum(shares) == pytest.approx(1.0)
    for c in summary["classes"]:
        assert c["pixels"] == int((labels == c["id"]).sum())
        # Kaggle RLE: column-major, 1-based; it decodes back to the class's pixels.
        assert np.array_equal(rle_decode(c["rle"], labels.shape), (labels == c["id"]).astype(np.uint8))


def test_probabilities_and_uncertainty(client, street_png):
    labels = png(post(client, street_png))
    probs = np.load(io.BytesIO(post(client, street_png, "probs").content))["probs"]
    assert probs.dtype == np.float16 and probs.shape == (6, 96, 128)
    assert np.allclose(probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
    # float16 rounding can tie two classes; where the top probability is clear, it is the label.
    top = np.sort(probs.astype(np.float32), 0)
    clear = top[-1] - top[-2] > 1e-2
    assert np.array_equal(probs.argmax(0)[clear], labels[clear])
    entropy, margin = (png(post(client, street_png, "uncertainty", uncertainty=kind)) for kind in ("entropy", "margin"))
    assert entropy.shape == margin.shape == (96, 128) and entropy.dtype == np.uint8
    expected_margin = np.round((1 - probs.astype(np.float32).max(0)) * 255)
    assert np.abs(margin.astype(int) - expected_margin).max() <= 1  # float16 vs float32 probabilities
    assert not np.array_equal(entropy, margin)


def test_tiled_requests(client, served_checkpoint, street_png, tmp_path):
    """?tile=HxW predicts by tiles at the image's own size, as `predict --tile` does."""
    out = run_main("predict", str(served_checkpoint), str(street_png), "--out", str(tmp_path), "--backend", "torch",
                   "--precision", "fp32", "--tile", "48x64")
    assert out.returncode == 0, out.stderr
    tiled = png(post(client, street_png, tile="48x64"))
    assert np.array_equal(tiled, np.array(Image.open(tmp_path / "street_labels.png")))
    assert not np.array_equal(tiled, png(post(client, street_png)))  # not the resized prediction
    probs = np.load(io.BytesIO(post(client, street_png, "probs", tile="48x64").content))["probs"]
    assert probs.shape == (6, 96, 128)
    for bad in ("48", "0x64", "axb"):
        answer = post(client, street_png, tile=bad)
        assert answer.status_code == 422 and bad in answer.json()["error"]


def test_concurrent_requests_are_batched_and_keep_their_labels(service, street_png):
    """Images queued together share a forward pass and get the labels each gets alone."""
    from pixelwise.data.synthetic import make_scene
    from pixelwise.serve.service import ModelService

    images = [read_image(street_png)] + [make_scene(np.random.default_rng(s), 60 + 8 * s, 90)[0] for s in range(5)]
    # A long wait, so that the batches do not depend on how fast this test submits on a busy machine.
    batching = ModelService(service.predictor, max_batch=4, max_wait=60.0)
    try:
        alone = [batching.submit(image).result() for image in images]
        assert all(a.batch_size == 1 for a in alone)  # one at a time: nobody announced, so no waiting
        with batching.batcher.incoming():  # a request on its way holds the batch open until it is submitted
            futures = [batching.submit(image) for image in images]
        together = [f.result() for f in futures]
    finally:
        batching.close()
    assert [t.batch_size for t in together] == [4, 4, 4, 4, 2, 2]  # at most 4 a batch
    for a, t in zip(alone, together, strict=True):
        assert np.array_equal(a.labels, t.labels)


def test_openvino_serves_on_two_threads_and_keeps_the_labels(served_checkpoint, street_png, tmp_path):
    """OpenVINO takes calls from several threads: two workers run batches at once, each image keeping its labels."""
    pytest.importorskip("openvino")
    from pixelwise.data.synthetic import make_scene
    from pixelwise.inference.export import export_checkpoint
    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.service import ModelService

    xml = export_checkpoint(served_checkpoint, tmp_path / "model.xml", "openvino")
    images = [read_image(street_png)] + [make_scene(np.random.default_rng(s), 60 + 8 * s, 90)[0] for s in range(7)]
    reference = Predictor(xml, precision="fp32")
    alone = [reference.predict(image) for image in images]
    service = ModelService(lambda: Predictor(xml, precision="fp32"), max_batch=2)
    try:
        assert service.info()["workers"] == 2 and service.info()["backend"] == "openvino"
        futures = [service.submit(image) for image in images * 3]
        together = [f.result().labels for f in futures]
    finally:
        service.close()
    for k, labels in enumerate(together):
        assert np.array_equal(labels, alone[k % len(images)])
    one = ModelService(reference, workers=1)
    assert one.batcher.workers == 1
    one.close()
    with pytest.raises(ConfigError, match="--workers 2: the torch backend runs one call at a time"):
        ModelService(Predictor(served_checkpoint, precision="fp32", backend="torch"), workers=2)


def test_predict_json_names_the_file_in_errors(client):
    answer = client.post("/predict", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert answer.status_code == 415
    assert json.loads(answer.content) == {"error": answer.json()["error"]} and "notes.txt" in answer.json()["error"]
