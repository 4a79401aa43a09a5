"""Running the app with uvicorn: listen, say where, and stop cleanly on SIGTERM or Ctrl-C.

The socket is bound before the server starts, so a port that is taken is one error line, ``--port 0``
picks a free port, and the URL printed is the one that answers. On SIGTERM or SIGINT the server stops
accepting connections, lets the requests in flight finish, answers the queued ones, and returns normally
(exit 0); a second signal stops it without waiting.

>>> sock = bind("127.0.0.1", 0)
>>> url(sock).startswith("http://127.0.0.1:")
True
>>> sock.close()
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from pixelwise.core.errors import ConfigError
from pixelwise.serve.app import create_app
from pixelwise.serve.service import ModelService


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a signal only asks it to stop, and ``on_ready`` runs once it accepts.

    uvicorn re-raises SIGTERM / SIGINT once its graceful shutdown is done, which would end the process by
    the signal (or a KeyboardInterrupt) rather than with exit status 0.
    """

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True  # a second signal: stop waiting for the requests in flight
        self.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port), or a ConfigError saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ConfigError(f"--host {host}: not an address to listen on ({e.strerror or e})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); "
                          "choose another --port (0 picks a free one)") from None
    return sock


def url(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (IPv6 addresses in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(service: ModelService, on_ready: Callable[[], None] | None = None) -> GracefulServer:
    """A server for ``service``; ``server.run(sockets=[sock])`` serves until a signal or ``server.should_exit``."""
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=None, lifespan="on")
    return GracefulServer(config, on_ready)


def run_server(service: ModelService, sock: socket.socket, on_ready: Callable[[], None] | None = None) -> None:
    """Serve ``service`` on the listening ``sock`` until SIGTERM or SIGINT; ``on_ready`` runs once it accepts."""
    make_server(service, on_ready).run(sockets=[sock])
