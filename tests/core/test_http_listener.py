"""The stable-link listener (http/server.py) against waitress's own failure modes."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any

import requests

from bucketvault.http.server import HttpServer


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]


def _port_is_free(port: int) -> bool:
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _get(server: HttpServer) -> int:
    return requests.get(f"http://{server.address}/", timeout=10).status_code


def test_an_exception_while_accepting_does_not_close_the_listener() -> None:
    server = HttpServer("127.0.0.1:0", threads=2)
    server.start(_app)
    try:
        assert _get(server) == 200
        listener = server._server
        try:
            raise RuntimeError("a connection that could not be set up")
        except RuntimeError:
            # What wasyncore calls when handle_accept raises.
            listener.handle_error()
        assert not listener.trigger._closed
        assert _get(server) == 200
    finally:
        server.stop()
    assert _port_is_free(server.port)


def test_stop_closes_everything_when_the_loop_lost_its_wake_up_pipe() -> None:
    server = HttpServer("127.0.0.1:0", threads=2)
    server.start(_app)
    assert _get(server) == 200
    thread = server._thread
    server._server.trigger.close()  # the state a CI run found: stop() could not wake the loop
    server.stop()
    assert thread is not None and not thread.is_alive()
    assert _port_is_free(server.port)
