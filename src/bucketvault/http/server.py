"""waitress in a thread of the service's process.

waitress: a pure-Python WSGI server with no dependencies, maintained by the Pylons
project, with bounded request parsing (header and body limits) and a fixed thread pool;
it speaks HTTP/1.1 only and has no TLS, which the listener leaves to the ingress.
The socket is bound before the application exists, so the service knows the port (and
so the links' default public URL on loopback) when it builds the use cases.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from waitress import wasyncore

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _bind(listen: str, reuse_port: bool = False) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # serve --workers: every worker answers links on the one public port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, int(port)))
    except (OSError, ValueError) as exc:
        sock.close()
        raise OSError(f"cannot listen on {listen}") from exc
    return sock


class HttpServer:
    """Bound at construction, serving after start(app), stopped by stop()."""

    def __init__(self, listen: str, *, threads: int = 8, reuse_port: bool = False) -> None:
        self._sock = _bind(listen, reuse_port)
        self._threads = threads
        self._map: dict[int, Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        host = listen.rpartition(":")[0]
        self.port: int = self._sock.getsockname()[1]
        self.address = f"{host}:{self.port}"

    def start(self, app: WsgiApp) -> None:
        """Serve app in a background thread."""
        self._server = waitress.create_server(
            app,
            map=self._map,
            sockets=[self._sock],
            threads=self._threads,
            ident="bucketvault",
            # Links never carry a body; anything large is not a link request.
            max_request_body_size=0,
            max_request_header_size=16384,
            expose_tracebacks=False,
        )
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, then the worker threads."""
        server = self._server
        if server is None:
            self._sock.close()
            return
        self._server = None
        # Closing from the loop's own thread: the map is the loop's to change.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("http listener did not stop within %.0f s", timeout)
        server.task_dispatcher.shutdown(timeout=timeout)


__all__ = ["HttpServer", "WsgiApp"]
