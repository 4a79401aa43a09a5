"""`pixelwise serve` as a user runs it: a real process, a real port, SIGTERM and Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pixelwise.testing import assert_one_line_error, run_main


def start(checkpoint, *options: str) -> tuple[subprocess.Popen, str]:
    """`pixelwise serve CHECKPOINT --port 0 ...` in a fresh process, and the URL it prints once it accepts."""
    process = subprocess.Popen([sys.executable, "-m", "pixelwise", "serve", str(checkpoint), "--port", "0",
                                "--backend", "torch", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in process.stdout:  # ends if the process dies; the test then fails with what it said
        lines.append(line)
        if line.startswith("serving on "):
            return process, line.split()[2]
    process.wait(10)
    pytest.fail(f"the server did not start: {''.join(lines)} {process.stderr.read()}")


def raw_request(url: str, head_only: bool, body: bytes) -> tuple[socket.socket, bytes]:
    """Open a connection and send a POST /predict's headers and, unless ``head_only``, its body."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head if head_only else head + body)
    return sock, head


def multipart(data: bytes) -> bytes:
    return (b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="street.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--XyZ--\r\n")


def wait_until_refused(url: str, seconds: float = 60) -> None:
    """Return once ``url``'s port refuses connections (the server stopped listening); fail after ``seconds``."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    pytest.fail(f"{url} still accepts connections {seconds} s after SIGTERM")


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(served_checkpoint, street_png):
    import httpx

    process, url = start(served_checkpoint)
    try:
        assert httpx.get(url + "health").json() == {"status": "ok"}
        body = multipart(street_png.read_bytes())
        # A request in flight: its headers are in, half of its body is not.
        sock, _ = raw_request(url, True, body)
        sock.sendall(body[: len(body) // 2])
        # Once this answer is back, the server has read the first connection's headers (sent before it).
        assert httpx.get(url + "health").status_code == 200
        process.send_signal(signal.SIGTERM)
        wait_until_refused(url)  # shutdown has begun: no new connections; the one in flight must still finish
        sock.sendall(body[len(body) // 2:])
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b"\x89PNG" in answer
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()
    out = process.stdout.read()
    assert "stopped" in out and "Traceback" not in process.stderr.read()


def test_ctrl_c_stops_with_exit_0(served_checkpoint):
    import httpx

    process, url = start(served_checkpoint, "--max-batch", "2")
    try:
        assert httpx.get(url + "model").json()["max_batch"] == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()
    assert "Traceback" not in process.stderr.read()


def test_bad_command_lines(served_checkpoint, tmp_path, monkeypatch):
    assert_one_line_error(run_main("serve", str(tmp_path / "missing.safetensors")), "missing.safetensors", "not found")
    assert_one_line_error(run_main("serve", str(served_checkpoint), "--max-batch", "0"), "--max-batch")
    assert_one_line_error(run_main("serve", str(served_checkpoint), "--backend", "tpu"), "tpu")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_one_line_error(run_main("serve", str(served_checkpoint), "--backend", "torch", "--port", port),
                              port, "cannot listen", "--port")
    # Without the serve extra: one line naming it, before the model is loaded.
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert_one_line_error(run_main("serve", str(served_checkpoint)), "pip install 'pixelwise[serve]'")
