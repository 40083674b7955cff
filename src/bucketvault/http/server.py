"""waitress in a thread of the service's process.

waitress: a pure-Python WSGI server with no dependencies, maintained by the Pylons
project, with bounded request parsing (header and body limits) and a fixed thread pool;
it speaks HTTP/1.1 only and has no TLS of its own.

TLS (with BUCKETVAULT_TLS_CERT_FILE/KEY_FILE, the gRPC listener's files): each accepted
connection is wrapped in an ssl.SSLSocket *without* a handshake on connect, and the
channel drives the handshake and every read non-blocking from waitress's event loop. A
blocking handshake would let one slow client stall every connection (the loop is one
thread); wrapping the listening socket would do exactly that. The certificate follows
rotation on disk like gRPC's (grpc/tls.py ReloadingCertificates): checked on every
accept, a pair that does not load keeps the previous one serving.

The socket is bound before the application exists, so the service knows the port (and
so the links' default public URL on loopback) when it builds the use cases.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel

from bucketvault.config import TlsConfig
from bucketvault.grpc.tls import CertificatePair, ReloadingCertificates

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


class TlsContexts:
    """The SSLContext for new connections, rebuilt when the certificate files change."""

    def __init__(self, tls: TlsConfig) -> None:
        self._tls = tls
        self._certificates = ReloadingCertificates(tls)
        self._lock = threading.Lock()
        self._pair: CertificatePair = self._certificates.current
        self._context = self._build()

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        # The paths, not the checked bytes: ssl reads only files. A rotation racing this
        # read fails to load (mismatched pair) and the previous context keeps serving.
        context.load_cert_chain(str(self._tls.cert_file), str(self._tls.key_file))
        return context

    def current(self) -> ssl.SSLContext:
        """The context to wrap a new connection with."""
        self._certificates()  # reloads (and logs) when the files changed
        pair = self._certificates.current
        if pair is not self._pair:
            with self._lock:
                if pair is not self._pair:
                    try:
                        self._context = self._build()
                    except (OSError, ssl.SSLError):
                        log.warning("http tls: new certificate files refused")
                    self._pair = pair
        return self._context


class _TlsChannel(HTTPChannel):  # type: ignore[misc]
    """An HTTP channel over a non-blocking TLS socket (see the module header)."""

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any) -> None:
        wrapped = server.tls_contexts.current().wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        self._handshaken = False
        super().__init__(server, wrapped, addr, adj, map=map)

    def handle_read(self) -> None:
        tls: ssl.SSLSocket = self.socket
        try:
            if not self._handshaken:
                tls.do_handshake()
                self._handshaken = True
            data = tls.recv(self.adj.recv_bytes)
            # Decrypted bytes ssl holds beyond what was asked: select() cannot see them.
            while data and tls.pending():
                data += tls.recv(tls.pending())
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # a partial record or handshake flight: wait for more bytes
        except OSError:
            # A failed handshake (plain HTTP, an untrusted client), a reset: close quietly.
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
        else:
            self.connected = False

    def send(self, data: bytes, do_close: bool = True) -> int:
        if not self._handshaken:
            return 0
        try:
            return int(super().send(data, do_close))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0


class HttpServer:
    """Bound at construction, serving after start(app), stopped by stop()."""

    def __init__(
        self,
        listen: str,
        *,
        threads: int = 8,
        tls: TlsConfig | None = None,
        reuse_port: bool = False,
    ) -> None:
        # Loaded before binding: a bad certificate stops start-up with the file's name.
        self._tls = TlsContexts(tls) if tls is not None else None
        self.scheme = "https" if tls is not None else "http"
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
            url_scheme=self.scheme,
        )
        if self._tls is not None:
            self._server.tls_contexts = self._tls
            self._server.channel_class = _TlsChannel
        # wasyncore's default closes the listener, and with it the trigger that wakes the
        # loop, on any exception an accept raises: one bad connection would end every link
        # until a restart, and leave stop() nothing to wake the loop with.
        self._server.handle_error = self._accept_failed
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()

    def _accept_failed(self) -> None:
        log.error("http listener: accepting a connection failed", exc_info=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, then the worker threads."""
        server = self._server
        if server is None:
            self._sock.close()
            return
        self._server = None
        close_all = functools.partial(wasyncore.close_all, self._map, ignore_all=True)
        try:
            # Closing from the loop's own thread: the map is the loop's to change.
            server.trigger.pull_trigger(close_all)
        except OSError:
            # The trigger is gone (closed under the loop): close from here instead; the
            # loop finds its map empty within one poll timeout and returns.
            log.warning("http listener: its wake-up pipe was closed; closing from stop()")
            close_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("http listener did not stop within %.0f s", timeout)
        server.task_dispatcher.shutdown(timeout=timeout)


__all__ = ["HttpServer", "TlsContexts", "WsgiApp"]
