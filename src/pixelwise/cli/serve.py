"""``pixelwise serve``: a model as a web service (API + page), until SIGTERM or Ctrl-C.

A thin layer over :mod:`pixelwise.serve`: load the model once, bind the port, print the URL, serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pixelwise.cli.common import BACKEND_HELP, Device, Precision
from pixelwise.inference.backends import AUTO_OPENVINO_MIN_IMAGES


def serve(
    models: Annotated[list[Path], typer.Argument(
        help="A best.safetensors written by train, or an exported .onnx / OpenVINO .xml; several .safetensors "
             "make an ensemble (their logits averaged).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    max_batch: Annotated[int, typer.Option(
        min=1, help="Most requests batched into one forward pass (1: no batching).")] = 8,
    batch_wait_ms: Annotated[float, typer.Option(
        min=0, help="Most milliseconds a batch waits for requests that are already arriving.")] = 5.0,
    queue: Annotated[int, typer.Option(
        min=1, help="Most requests waiting; more are answered 429 with Retry-After.")] = 64,
    max_pixels: Annotated[int, typer.Option(
        min=1, help="Largest image accepted, in pixels (larger: 413).")] = 40_000_000,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Threads running batches (default: 2 where the runtime takes concurrent calls, OpenVINO "
                    "and onnxruntime, so one batch's pre- and post-processing overlaps another's model; else 1).")
    ] = None,
    precision: Precision = "auto",
    device: Device = "auto",
) -> None:
    """Serve a model: POST /predict (labels, color, overlay, json, probs, uncertainty), a web page at /, /docs.

    \b
    Examples:
      pixelwise serve runs/camvid/best.safetensors
      pixelwise serve model.onnx --host 0.0.0.0 --port 8080 --max-batch 16
      curl -F image=@street.png "http://127.0.0.1:8000/predict?output=json"
    """
    from pixelwise.serve import check_installed

    check_installed()  # before the model loads: a missing extra is one line naming it
    from pixelwise.inference.predictor import Predictor
    from pixelwise.serve.server import bind, run_server, url
    from pixelwise.serve.service import ModelService

    # A server is a long job: `auto` may pick a runtime whose one-time conversion pays over many requests.
    # Built on the thread that will run it (see ModelService): a bad checkpoint is still one error line here.
    service = ModelService(lambda: Predictor(models, device, precision, backend=backend,
                                             num_images=AUTO_OPENVINO_MIN_IMAGES),
                           max_batch, queue, max_pixels, batch_wait_ms / 1e3, workers)
    try:
        sock = bind(host, port)
    except BaseException:
        service.close()
        raise
    address = url(sock)
    info = service.info()
    typer.echo(f"model: {info['model']}, {len(info['classes'])} classes, backend {info['backend']} "
               f"({info['precision']}); batches of up to {max_batch} on {info['workers']} thread(s), queue {queue}")

    def ready() -> None:
        typer.echo(f"serving on {address} (API: {address}docs); Ctrl-C or SIGTERM stops")

    run_server(service, sock, on_ready=ready)
    typer.echo("stopped")
