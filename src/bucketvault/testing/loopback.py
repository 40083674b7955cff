"""In-process HTTP stand-ins on 127.0.0.1: the server plumbing every fake endpoint shares.

A stand-in (a scripted STS, a token endpoint, a recording proxy) is a request handler class
given to LoopbackServer, which serves it on a free loopback port from a daemon thread until
``close()``; with a certificate it speaks HTTPS.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bucketvault.testing.ports import LOOPBACK
from bucketvault.testing.tls import TlsFiles


class StandInHandler(BaseHTTPRequestHandler):
    """Base for stand-in request handlers: quiet, and a reply is one call."""

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: an access log would only clutter the test output."""

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete response (no body on HEAD)."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, body: object) -> None:
        """Send ``body`` as a JSON document."""
        self.reply(status, json.dumps(body).encode(), "application/json")


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a client pool opening more connections at once
    # than that, on a loaded machine, saw "connection reset by peer" from the stand-in
    # (never from a real cloud front end). A real server's backlog.
    request_queue_size = 128
    daemon_threads = True


class LoopbackServer:
    """A threading HTTP(S) server on 127.0.0.1:<free port>, running until ``close()``."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], *, tls: TlsFiles | None = None
    ) -> None:
        self._server = _Server((LOOPBACK, 0), handler)
        scheme = "http"
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls.cert), str(tls.key))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = int(self._server.server_address[1])
        self.url = f"{scheme}://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FaultyServer(LoopbackServer):
    """A stand-in that can misbehave the two ways a cloud endpoint does short of answering:
    "stall" (accept, read, never answer, until the server closes) and "drop" (close the
    connection without a byte). Each stand-in's handler asks misbehave(handler, mode)
    before answering; its own modes (throttling, 5xx) it answers itself."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], *, tls: TlsFiles | None = None
    ) -> None:
        self.released = threading.Event()
        # What the next request gets, and how many came since set(): the tests' dials.
        self.mode = "ok"
        self.requests = 0
        self._lock = threading.Lock()
        super().__init__(handler, tls=tls)

    def set(self, mode: str) -> None:
        """Answer from now on in this mode, counting requests afresh."""
        with self._lock:
            self.mode = mode
            self.requests = 0

    def arrived(self) -> str:
        """Count one request; the mode it is to be answered in."""
        with self._lock:
            self.requests += 1
            return self.mode

    def misbehave(self, handler: BaseHTTPRequestHandler, mode: str) -> bool:
        """Stall or drop for those modes (True: the request is dealt with), else False."""
        if mode == "stall":
            self.released.wait(30)
        elif mode != "drop":
            return False
        handler.close_connection = True
        return True

    def close(self) -> None:
        self.released.set()  # stalled handlers end, so shutdown does not wait on them
        super().close()


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts: the proof, in
    SSRF tests, that a refused endpoint was never connected to."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.05)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


__all__ = ["CountingListener", "LoopbackServer", "StandInHandler"]
