"""Row 6: ``pixelwise serve`` under load on 127.0.0.1, with and without batching.

    python benchmarks/bench_serve.py [--requests 300] [--clients 16] [--max-batch 8] [--backends auto,torch]

A seeded classic U-Net (base 16, depth 4: the demo's) with an input size of 128x160 is saved as a checkpoint
and served by ``pixelwise serve`` in a process of its own, once with ``--max-batch 8`` and once with
``--max-batch 1`` (no batching), for each of ``--backends`` (``auto``, what a user gets: OpenVINO on a CPU
that has it; and ``torch``). Against each, ``--requests`` POST /predict requests (16 distinct synthetic
street scenes of 128x160, PNG, the default class-id answer) are sent one at a time and then from ``--clients``
concurrent clients (threads with keep-alive connections, in this process), after 20 warm-up requests.
Reported: throughput, p50/p99 latency, server errors (5xx or a dropped connection), refusals (429), the
mean batch size the server reports (``X-Batch-Size``) and the server's CPU time per request; and, for what
batching can gain at most, the model alone (``Predictor.predict_batch``) at batch 1 and 8. The clients share
the CPU with the server.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine_info, print_rows, row, write_json  # noqa: E402

BOUNDARY = "pixelwiseBench"


def save_model(folder: Path) -> Path:
    """The demo's U-Net (seeded random weights: speed does not depend on them) as a checkpoint."""
    import torch

    import pixelwise
    from pixelwise.data.synthetic import CLASSES
    from pixelwise.models.checkpoint import CheckpointMeta, save_checkpoint

    torch.manual_seed(0)
    model = pixelwise.create_model("unet", num_classes=CLASSES.num_classes, base_filters=16, depth=4)
    path = folder / "model.safetensors"
    save_checkpoint(path, model, CheckpointMeta.for_model(model, CLASSES, input_size=(128, 160)))
    return path


def scenes(count: int = 16) -> list[np.ndarray]:
    """``count`` distinct 128x160 street scenes (seeded)."""
    from pixelwise.data.synthetic import make_scene

    rng = np.random.default_rng(1)
    return [make_scene(rng, 128, 160)[0] for _ in range(count)]


def request_bodies(count: int = 16) -> list[bytes]:
    """Multipart bodies of the :func:`scenes` as PNG files."""
    from pixelwise.data.io import encode_png

    bodies = []
    for k, scene in enumerate(scenes(count)):
        png = encode_png(scene)
        bodies.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="scene{k}.png"\r\n'
                      f"Content-Type: image/png\r\n\r\n".encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode())
    return bodies


def start_server(checkpoint: Path, max_batch: int, backend: str,
                 workers: int | None = None) -> tuple[subprocess.Popen, str, int]:
    """``pixelwise serve`` on a free port (``workers``: its --workers, None: its default); the process, host, port."""
    command = [sys.executable, "-m", "pixelwise", "serve", str(checkpoint), "--port", "0",
               "--max-batch", str(max_batch), "--backend", backend]
    if workers is not None:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:
        print("  server:", line.rstrip(), flush=True)
        if line.startswith("serving on "):
            host, port = line.split()[2].split("//")[1].rstrip("/").split(":")
            return process, host, int(port)
    raise RuntimeError(f"pixelwise serve exited with {process.wait()} before serving")


class Connection:
    """A keep-alive HTTP/1.1 connection that sends prebuilt requests and reads answers with the least work.

    The clients share the CPU with the server, so they must cost little: http.client parses every answer's
    headers with the email package, several times the work of this.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock = socket.create_connection(self.address, timeout=120)

    def post(self, request: bytes) -> tuple[int, dict[bytes, bytes]]:
        """Send ``request``; the answer's status and headers (lower-case names); its body is read and dropped."""
        self.sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines[1:])}
        left = int(headers.get(b"content-length", b"0")) - len(body)
        while left > 0:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            left -= len(chunk)
        return int(lines[0].split()[1]), headers

    def close(self) -> None:
        self.sock.close()


def http_requests(host: str, port: int, bodies: list[bytes]) -> list[bytes]:
    """Each body as a whole POST /predict request."""
    return [(f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; "
             f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]


def load(host: str, port: int, bodies: list[bytes], requests: int, clients: int) -> dict:
    """Send ``requests`` requests from ``clients`` threads; latencies, statuses, batch sizes, wall time."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies, statuses, batches = [], [], []
    prepared = http_requests(host, port, bodies)

    def client() -> None:
        connection = Connection(host, port)
        while True:
            with lock:
                k = next(counter, None)
            if k is None:
                break
            start = time.perf_counter()
            try:
                status, headers = connection.post(prepared[k % len(prepared)])
                batch = int(headers.get(b"x-batch-size", b"0"))
            except OSError:
                status, batch = 599, 0  # a dropped connection counts as a server error
                connection.close()
                connection = Connection(host, port)
            with lock:
                latencies.append(time.perf_counter() - start)
                statuses.append(status)
                batches.append(batch)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ok = [b for b, s in zip(batches, statuses, strict=True) if s == 200]
    return {"requests": requests, "clients": clients, "wall_s": wall, "throughput": requests / wall,
            "p50_ms": 1e3 * statistics.median(latencies), "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
            "server_errors": sum(s >= 500 for s in statuses), "refused": sum(s == 429 for s in statuses),
            "mean_batch": statistics.mean(ok) if ok else 0.0}


def measure(requests: int, clients: int, max_batch: int, backend: str, checkpoint: Path, bodies: list[bytes],
            repeats: int = 3, workers: int | None = None) -> dict:
    """One backend: both servers (batching, none), each loaded one at a time and by ``clients`` clients,
    ``repeats`` times in turn; each figure is from the run of median throughput."""
    results = {}
    for batch in (max_batch, 1):
        process, host, port = start_server(checkpoint, batch, backend, workers)
        try:
            load(host, port, bodies, 20, min(clients, 4))  # warm-up: kernels, allocator, connections
            runs: dict[int, list[dict]] = {1: [], clients: []}
            for _ in range(max(1, repeats)):
                for n in (1, clients):
                    cpu = process_cpu_seconds(process.pid)
                    result = load(host, port, bodies, requests, n)
                    result["server_cpu_ms"] = 1e3 * (process_cpu_seconds(process.pid) - cpu) / requests
                    print(f"  {backend}, --max-batch {batch}, {n} client(s): {result['throughput']:.1f} req/s, p50 "
                          f"{result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, server errors "
                          f"{result['server_errors']}, mean batch {result['mean_batch']:.1f}", flush=True)
                    runs[n].append(result)
            for n, done in runs.items():
                ranked = sorted(done, key=lambda r: r["throughput"])
                results[(batch, n)] = {**ranked[len(ranked) // 2], "range": (ranked[0]["throughput"],
                                                                            ranked[-1]["throughput"]),
                                       "server_errors": sum(r["server_errors"] for r in done),
                                       "refused": sum(r["refused"] for r in done)}
        finally:
            process.terminate()
            results[(batch, "exit")] = process.wait(60)
    return results


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def model_alone(checkpoint: Path, backend: str, bodies_images: list[np.ndarray], seconds: float = 3.0) -> dict:
    """Images/s of ``Predictor.predict_batch`` at batch 1 and 8 (no server), and the runtime's name."""
    from pixelwise.inference.backends import AUTO_OPENVINO_MIN_IMAGES
    from pixelwise.inference.predictor import Predictor

    predictor = Predictor(checkpoint, backend=backend, num_images=AUTO_OPENVINO_MIN_IMAGES)
    speed = {}
    for batch in (1, 8):
        images = bodies_images[:batch]
        predictor.predict_batch(images)  # warm-up
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            predictor.predict_batch(images)
            done += batch
        speed[batch] = done / (time.perf_counter() - start)
    return {"runtime": f"{predictor.backend.name} {getattr(predictor.backend, 'precision', 'fp32')}",
            "alone_1": speed[1], "alone_8": speed[8]}


def spread(r: dict) -> str:
    return f"{r['range'][0]:.0f}-{r['range'][1]:.0f}"


def describe(r: dict) -> str:
    return (f"{r['throughput']:.1f} req/s (p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
            f"{r['server_errors']} server errors)")


def backend_rows(results: dict, number: str, letters: tuple[str, str], requests: int, clients: int, max_batch: int,
                 backend: str) -> tuple[list[dict], str]:
    """Two rows (with batching, without) and the note of one backend's results."""
    batched, single = results[(max_batch, clients)], results[(max_batch, 1)]
    unbatched, unbatched_single = results[(1, clients)], results[(1, 1)]
    rows = [
        row(f"{number}{letters[0]} serve ({backend}), {requests} requests: {clients} concurrent clients with batching "
            "vs one at a time", f"{describe(single)}, 1 client", f"{describe(batched)}, --max-batch {max_batch}",
            batched["throughput"] / single["throughput"], 1.5),
        row(f"{number}{letters[1]} serve ({backend}), {requests} requests: {clients} concurrent clients without "
            "batching vs one at a time", f"{describe(unbatched_single)}, 1 client",
            f"{describe(unbatched)}, --max-batch 1", unbatched["throughput"] / unbatched_single["throughput"]),
    ]
    errors = sum(r["server_errors"] for k, r in results.items() if isinstance(k, tuple) and k[1] != "exit")
    refused = sum(r["refused"] for k, r in results.items() if isinstance(k, tuple) and k[1] != "exit")
    note = (f"`--backend {backend}` ({results['runtime']}; the model alone, `Predictor.predict_batch`: "
            f"{results['alone_1']:.0f} images/s at batch 1, {results['alone_8']:.0f} at batch 8, "
            f"{results['alone_8'] / results['alone_1']:.2f}x): with --max-batch {max_batch} and {clients} clients "
            f"{batched['throughput']:.1f} req/s, p50 {batched['p50_ms']:.0f} ms, p99 {batched['p99_ms']:.0f} ms, "
            f"{batched['mean_batch']:.1f} requests per forward pass on average, {batched['server_cpu_ms']:.1f} ms "
            f"of server CPU per request; one at a time {single['throughput']:.1f} req/s, p50 "
            f"{single['p50_ms']:.0f} ms, p99 {single['p99_ms']:.0f} ms, {single['server_cpu_ms']:.1f} ms of server "
            "CPU per request. "
            f"Without batching, {clients} clients: {unbatched['throughput']:.1f} req/s, p50 "
            f"{unbatched['p50_ms']:.0f} ms, p99 {unbatched['p99_ms']:.0f} ms; one at a time "
            f"{unbatched_single['throughput']:.1f} req/s. Throughput over the repeats (req/s, slowest-fastest): "
            f"batching one at a time {spread(single)}, {clients} clients {spread(batched)}; without batching one at "
            f"a time {spread(unbatched_single)}, {clients} clients {spread(unbatched)}. "
            f"Server errors: {errors}; 429 refusals: {refused}; exit "
            f"status after SIGTERM: {results[(max_batch, 'exit')]} and {results[(1, 'exit')]}.")
    return rows, note


def bound_note(results: dict, clients: int, max_batch: int, cores: int) -> str:
    """What bounds row 6: the model's own gain from batches, and the server's other work on the same cores."""
    batched, single = results[(max_batch, clients)], results[(max_batch, 1)]
    model_ms = cores * 1e3 / results["alone_8"]  # CPU per image, every core busy with the model's threads
    rest_ms = batched["server_cpu_ms"] - model_ms
    cap = cores * 1e3 / batched["server_cpu_ms"]
    return (f"What bounds row 6: the model alone is {results['alone_8'] / results['alone_1']:.2f}x faster per image "
            f"in batches of {max_batch} than one at a time, the most batching alone can give; the server's two model "
            "threads (OpenVINO, onnxruntime) add the overlap of one batch's resizing and class ids with the next one's "
            f"forward pass. At {clients} clients the "
            f"server spent {batched['server_cpu_ms']:.1f} ms of CPU per request: about {model_ms:.1f} ms for the "
            f"model (its threads keep all {cores} cores busy for {1e3 / results['alone_8']:.1f} ms per image) and "
            f"{rest_ms:.1f} ms for everything else (HTTP, the multipart form, PNG decoding and encoding, threads "
            f"handing work over and waiting). On {cores} cores that caps the server at {cap:.0f} req/s, "
            f"{cap / single['throughput']:.2f}x one at a time, and the request threads and the model's threads, "
            "preempting each other, lose some of that. With cores to spare beside the model's, that other work would "
            "not come out of the model's time.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--backends", default="auto,torch", help="the servers' --backend, comma-separated")
    parser.add_argument("--quick", action="store_true", help="60 requests: a smoke run")
    parser.add_argument("--data", help="unused (the requests are synthetic); accepted like every row's script")
    parser.add_argument("--repeats", type=int, default=3, help="runs of --requests per configuration (median)")
    parser.add_argument("--workers", type=int, help="the servers' --workers (default: theirs)")
    parser.add_argument("--json", help="write the rows here (for run_all.py)")
    args = parser.parse_args(argv)
    requests = 60 if args.quick else args.requests
    rows, notes, facts = [], [], {}
    bodies, images = request_bodies(), scenes()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_model(Path(tmp))
        for k, backend in enumerate(args.backends.split(",")):
            results = measure(requests, args.clients, args.max_batch, backend, checkpoint, bodies, args.repeats,
                              args.workers)
            results.update(model_alone(checkpoint, backend, images))
            letters = ("", "b") if k == 0 else (chr(ord("c") + 2 * (k - 1)), chr(ord("d") + 2 * (k - 1)))
            more_rows, note = backend_rows(results, "6", letters, requests, args.clients, args.max_batch, backend)
            rows += more_rows
            notes.append(note)
            facts[backend] = {str(key): value for key, value in results.items()}
            if k == 0:
                bound = bound_note(results, args.clients, args.max_batch, os.cpu_count() or 1)
    cpu = machine_info()
    notes.insert(0, f"Rows 6-6{rows[-1]['row'].split()[0][1:]}: `pixelwise serve` on 127.0.0.1 with the demo's U-Net "
                    f"(base 16, depth 4, seeded weights, input 128x160); {requests} requests of 128x160 PNG street "
                    f"scenes (the default class-id answer) per run, {args.repeats} runs of each configuration in turn "
                    "(each figure is from the run of median throughput), after 20 warm-up requests; the clients run "
                    f"in the benchmark's process, on the same {cpu['cores']} cores ({cpu['cpu']}) as the server, "
                    "costing it about 0.3 ms of CPU per request. One at a time: a single client; concurrent: "
                    "keep-alive clients each sending its next request as soon as its answer is back.")
    result = {"rows": rows, "notes": [" ".join(notes), bound], "facts": {"serve": facts}}
    print_rows(rows)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
