"""Bad uploads and a full queue: a 4xx JSON {"error": "..."} that says what is wrong, never a 500."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.io import encode_png


def encoded(kind: str, size=(40, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)).save(buffer, kind)
    return buffer.getvalue()


def assert_error(answer, status: int, *fragments: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    for fragment in fragments:
        assert fragment in body["error"], body["error"]


def upload(client, data: bytes, name: str = "photo.png", **params):
    return client.post("/predict", params=params, files={"image": (name, data, "application/octet-stream")})


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "TIFF", "WEBP", "BMP"])
def test_every_accepted_format(client, kind):
    answer = upload(client, encoded(kind), f"photo.{kind.lower()}")
    assert answer.status_code == 200, answer.text
    assert Image.open(io.BytesIO(answer.content)).size == (60, 40)


def test_bad_uploads(client):
    assert_error(upload(client, b"", "empty.png"), 400, "empty.png", "empty")
    assert_error(upload(client, b"just some text, no pixels", "notes.png"), 415, "notes.png", "not an image", "PNG")
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    assert_error(upload(client, gif.getvalue(), "anim.gif"), 415, "GIF", "PNG, JPEG")
    for kind in ("PNG", "JPEG", "WEBP"):
        data = encoded(kind, (120, 160))
        assert_error(upload(client, data[: len(data) // 2], f"cut.{kind.lower()}"), 400, f"cut.{kind.lower()}",
                     "truncated or corrupt")


def test_too_many_pixels_is_refused_from_the_header(client, service):
    # 8000 x 6000 = 48 MP of one colour: a small file, refused before any pixel is decoded.
    big = encode_png(np.zeros((6000, 8000), np.uint8))
    assert len(big) < 1_000_000
    assert_error(upload(client, big, "huge.png"), 413, "huge.png", "8000x6000", "--max-pixels")


def test_too_many_bytes_is_refused_before_the_body_is_read(served_checkpoint):
    from fastapi.testclient import TestClient

    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.app import create_app
    from pixelwise.serve.service import ModelService

    small = ModelService(lambda: Predictor(served_checkpoint, precision="fp32", backend="torch"),
                         max_pixels=1000)
    with TestClient(create_app(small)) as client:
        assert_error(upload(client, b"\0" * (9 << 20), "big.png"), 413, "bytes", "--max-pixels")
        assert_error(upload(client, encoded("PNG", (40, 60))), 413, "60x40", "limit of 1,000")


def test_bad_requests(client, street_png):
    assert_error(client.post("/predict"), 422, "missing the multipart field 'image'")
    assert_error(client.post("/predict", data={"image": "not a file"}), 422, "'image' must be a file upload")
    data = street_png.read_bytes()
    assert_error(upload(client, data, output="jpeg"), 422, "output", "labels")
    assert_error(upload(client, data, output="uncertainty", uncertainty="variance"), 422, "uncertainty", "entropy")
    assert_error(client.get("/nowhere"), 404, "Not Found")
    assert_error(client.get("/predict"), 405, "Method Not Allowed")


def test_a_full_queue_answers_429_with_retry_after(served_checkpoint, street_png):
    """With the model held, one request runs, one waits in a queue of 1, and the rest are turned away."""
    import httpx

    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.app import create_app
    from pixelwise.serve.service import ModelService

    service = ModelService(lambda: Predictor(served_checkpoint, precision="fp32", backend="torch"), max_batch=1,
                           queue=1)
    gate = threading.Event()
    run = service.batcher.run
    service.batcher.run = lambda jobs: gate.wait(60) and run(jobs)  # the model waits until the gate opens
    data = street_png.read_bytes()

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as http:
            async def one():
                return await http.post("/predict", files={"image": ("street.png", data, "image/png")})

            tasks = [asyncio.create_task(one()) for _ in range(5)]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            gate.set()  # the first answers are the refusals; now let the model run
            return [await task for task in tasks]

    try:
        answers = asyncio.run(burst())
    finally:
        gate.set()
        service.close()
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1 and statuses.count(429) >= 3 and set(statuses) <= {200, 429}, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert_error(refused, 429, "busy", "retry")
