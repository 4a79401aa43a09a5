"""The HTTP API and the web page (FastAPI): a thin layer over :class:`~pixelwise.serve.service.ModelService`.

* ``GET /health``: ``{"status": "ok"}``; ``GET /model``: classes, input size, backend, precision, limits;
* ``POST /predict`` with a multipart field ``image``: class ids as a PNG, or ``?output=`` color, overlay,
  json, probs or uncertainty (``?uncertainty=entropy|margin``); ``?tile=512x512`` predicts by tiles;
* ``GET /``: the page (``static/``: plain HTML, CSS and JS, nothing fetched from elsewhere);
* ``GET /docs`` and ``/openapi.json``: the API's OpenAPI description (FastAPI's).

Every failure is JSON ``{"error": "<one line>"}`` with a 4xx status when the request is at fault (413 too
large, 415 not an image, 422 bad parameter, 429 queue full with ``Retry-After``), 503 while shutting down.
Decoding and encoding run in worker threads and the model in its own, so the event loop only moves bytes.

>>> import pixelwise
>>> from fastapi.testclient import TestClient
>>> from pixelwise.data.presets import get_preset
>>> from pixelwise.inference.predictor import Predictor
>>> from pixelwise.models.checkpoint import CheckpointMeta
>>> model = pixelwise.create_model("unet", num_classes=2, base_filters=4, depth=2)
>>> model.meta = CheckpointMeta.for_model(model, get_preset("binary"), input_size=(32, 32))
>>> with TestClient(create_app(ModelService(Predictor(model, precision="fp32")))) as client:
...     client.get("/health").json(), client.post("/predict").json()["error"]
({'status': 'ok'}, "missing the multipart field 'image' (the image file)")
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pixelwise.core.errors import PixelwiseError, one_line
from pixelwise.core.version import __version__
from pixelwise.serve.batcher import Closed, QueueFull
from pixelwise.serve.outputs import MEDIA_TYPES, SUFFIXES, Output, render
from pixelwise.serve.service import ModelService
from pixelwise.serve.uploads import UploadError, decode_upload

T = TypeVar("T")
STATIC = Path(__file__).parent / "static"
# Work on an image this small (bytes uploaded, values answered) runs on the event loop: it takes less time than
# handing it to a worker thread and back, which on a small CPU also costs the model's threads their cores
# (serve benchmark, 128x160 PNGs: one client 248 against 207 requests/s, 16 clients 347 against 285).
SMALL_WORK = 1 << 18
log = logging.getLogger("pixelwise.serve")


async def small_inline(function: Callable[..., T], size: int, *args: Any) -> T:
    """``function(*args)``, on the event loop when ``size`` <= SMALL_WORK, else in a worker thread."""
    if size <= SMALL_WORK:
        return function(*args)
    return await run_in_threadpool(function, *args)


def parse_tile(text: str | None, default: tuple[int, int] | None) -> tuple[int, int] | None:
    """``?tile=``: ``HxW`` (e.g. 512x512), ``none`` (no tiling) or absent (the server's default).

    >>> parse_tile("512x384", None), parse_tile("none", (256, 256)), parse_tile(None, (256, 256))
    ((512, 384), None, (256, 256))
    """
    if text is None:
        return default
    if text.lower() == "none":
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UploadError(422, f"tile '{text}' is not HxW with two positive whole numbers, e.g. 512x512 (or none)")
    return int(parts[0]), int(parts[1])


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of validation problems as one line a person can act on."""
    problems = []
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body", "query"))
        if where == "image" and problem.get("type") == "missing":
            problems.append("missing the multipart field 'image' (the image file)")
        elif where == "image":
            problems.append("the field 'image' must be a file upload (curl -F image=@photo.jpg)")
        else:
            problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "..."}``; never a traceback in an answer."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull) -> JSONResponse:
        return error(429, f"the server is busy (its queue of {request.app.state.service.batcher.capacity} is full); "
                          f"retry in {exc.retry_after} s", {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Closed)
    async def closing(request: Request, exc: Closed) -> JSONResponse:
        return error(503, "the server is shutting down; retry on another instance", {"Retry-After": "5"})

    @app.exception_handler(PixelwiseError)
    async def bad_input(request: Request, exc: PixelwiseError) -> JSONResponse:
        return error(getattr(exc, "status", 422), one_line(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error while answering %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


class UploadLimit:
    """Refuses a POST whose declared length is over ``max_bytes`` (413) before its body is read."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.max_bytes:
                response = error(413, f"upload of {int(length):,} bytes is over this server's limit of "
                                      f"{self.max_bytes:,} (set by --max-pixels); send a smaller image")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(service: ModelService) -> FastAPI:
    """The application for ``service``; its lifespan stops the service's model thread at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(service.close)  # the queued requests are answered first

    app = FastAPI(title="pixelwise", version=__version__, lifespan=lifespan,
                  description="Semantic segmentation of uploaded images. `POST /predict` with a multipart field "
                              "`image`; the page at `/` does the same in a browser.")
    app.state.service = service
    add_error_handlers(app)
    # An encoded image takes at most a few bytes per pixel (16-bit RGBA TIFF: 8), plus the form's overhead.
    app.add_middleware(UploadLimit, max_bytes=8 * service.max_pixels + (1 << 20))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/health")
    async def health() -> dict:
        """``{"status": "ok"}`` while the server runs."""
        return {"status": "ok"}

    @app.get("/model")
    async def model() -> dict:
        """The model: classes (id, name, colour), ignore index, input size, backend, precision, limits."""
        return service.info()

    add_predict_route(app, service)
    return app


def add_predict_route(app: FastAPI, service: ModelService) -> None:
    """``POST /predict``."""

    @app.post("/predict", response_class=Response, responses={
        200: {"description": "The output asked for", "content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))}},
        413: {"description": "Too many pixels or bytes"}, 415: {"description": "Not an image"},
        422: {"description": "Bad parameter"}, 429: {"description": "Queue full; see Retry-After"}})
    async def predict(
        image: Annotated[UploadFile, File(description="The image: PNG, JPEG, TIFF, WebP or BMP.")],
        output: Annotated[Output, Query(description="labels: class-id PNG (as `pixelwise predict` writes); "
                                        "color, overlay: PNGs; json: shares, RLE, timing; probs: float16 NPZ; "
                                        "uncertainty: grey PNG")] = "labels",
        uncertainty: Annotated[Literal["entropy", "margin"], Query(
            description="For output=uncertainty: entropy over log(classes), or 1 - top probability")] = "entropy",
        tile: Annotated[str | None, Query(description="Tiled prediction HxW, e.g. 512x512, or none")] = None,
    ) -> Response:
        """Segment one image."""
        start = time.perf_counter()
        tile_size = parse_tile(tile, service.default_tile)
        name = image.filename or "upload"
        with service.batcher.incoming():
            data = await image.read()
            pixels = await small_inline(decode_upload, len(data), data, name, service.max_pixels)
            future = service.submit(pixels, tile_size, probs=output in ("probs", "uncertainty"))
        decoded = time.perf_counter()
        prediction = await asyncio.wrap_future(future)
        timing = {"decode": (decoded - start) * 1e3, "queue": prediction.queue_ms, "model": prediction.model_ms,
                  "total": (time.perf_counter() - start) * 1e3}
        info = service.info()
        values = pixels.shape[0] * pixels.shape[1] * (len(info["classes"]) if prediction.probs is not None else 1)
        body = await small_inline(render, values, output, pixels, prediction, info, uncertainty, timing)
        stem = re.sub(r"[^\w.-]", "_", Path(name).stem, flags=re.ASCII) or "upload"  # a header takes ASCII only
        headers = {"Content-Disposition": f'inline; filename="{stem}_{output}{SUFFIXES.get(output, ".png")}"',
                   "Server-Timing": f"queue;dur={prediction.queue_ms:.1f}, model;dur={prediction.model_ms:.1f}",
                   "X-Batch-Size": str(prediction.batch_size)}
        return Response(body, media_type=MEDIA_TYPES[output], headers=headers)
