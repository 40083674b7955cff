"""The link listener's WSGI application: ``GET|HEAD /l/<token>/<key>`` -> 302 to a signed
URL, nothing else. Bytes never pass through it.

Every GET and HEAD of a link is audited (action ``link.open``, the client address as the
peer, the key, the outcome and reason) before it is answered: no record, 503 and no
redirect. Every refusal is ``404`` with one plain body, so an answer never tells a
forged token from a revoked one or a missing mount; the record says which. Requests
over the client's rate limit get 429 before any work, and are logged, not audited: the
limit is there to bound the work (a durable audit write is most of it) one client causes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from bucketvault.app.common import Recorder
from bucketvault.app.links import Links, OpenInput
from bucketvault.audit.draft import AuditDraft, drafting
from bucketvault.audit.event import KeyList, bounded
from bucketvault.errors import BucketVaultError, Internal, NotFound, Unavailable
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.models import Method

log = logging.getLogger("bucketvault.http")

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]
_PLAIN = {
    404: (b"not found\n", "404 Not Found"),
    405: (b"method not allowed\n", "405 Method Not Allowed"),
    429: (b"too many requests\n", "429 Too Many Requests"),
    500: (b"internal error\n", "500 Internal Server Error"),
    503: (b"unavailable\n", "503 Service Unavailable"),
}
_METHODS = {"GET": Method.GET, "HEAD": Method.HEAD}


class LinkApp:
    def __init__(
        self,
        links: Links,
        recorder: Recorder,
        limiter: TokenBuckets,
        cors_origins: Iterable[str] = (),
    ) -> None:
        self._links = links
        self._recorder = recorder
        self._limiter = limiter
        self._origins = frozenset(cors_origins)

    def _cors(self, environ: dict[str, Any]) -> Headers:
        origin = environ.get("HTTP_ORIGIN", "")
        # Vary on every answer: a shared cache must not hand one origin's answer to another.
        headers: Headers = [("Vary", "Origin")]
        if origin and origin in self._origins:
            headers.append(("Access-Control-Allow-Origin", origin))
        return headers

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        cors = self._cors(environ)
        if path == "/healthz" and method in _METHODS:
            return _plain(start_response, 200, b"ok\n", "200 OK", cors, method)
        if not path.startswith("/l/"):
            return _refuse(start_response, 404, cors, method)
        if method == "OPTIONS":
            # A preflight: links take no headers or body, so GET and HEAD are all there is.
            allowed: Headers = []
            if any(name == "Access-Control-Allow-Origin" for name, _ in cors):
                allowed = [
                    ("Access-Control-Allow-Methods", "GET, HEAD"),
                    ("Access-Control-Max-Age", "600"),
                ]
            return _plain(start_response, 204, b"", "204 No Content", [*cors, *allowed], method)
        if method not in _METHODS:
            return _refuse(start_response, 405, [*cors, ("Allow", "GET, HEAD")], method)
        client = str(environ.get("REMOTE_ADDR", ""))
        if not self._limiter.take(client):
            log.warning("link open rate-limited client=%s", client)
            return _refuse(start_response, 429, [*cors, ("Retry-After", "1")], method)
        return self._open(environ, start_response, method, path, client, cors)

    def _open(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        path: str,
        client: str,
        cors: Headers,
    ) -> Iterable[bytes]:
        try:
            # PEP 3333: PATH_INFO is the (percent-decoded) bytes as latin-1.
            text = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            text = ""
        token, _, key = text[len("/l/") :].partition("/")
        request_id = secrets.token_hex(8)
        draft = AuditDraft(
            request_id,
            "link.open",
            peer=bounded(f"http:{client}"),
            keys=KeyList.of((key,) if key else ()),
            method=method,
        )
        with drafting(draft):
            try:
                if not text:
                    raise NotFound("no such link", reason="INVALID_KEY")
                redirect = self._links.open(OpenInput(token, key, _METHODS[method]), request_id)
            except Exception as exc:
                return self._failed(start_response, draft, exc, cors, method)
        headers = [
            *cors,
            ("Location", redirect.url),
            ("Cache-Control", f"private, max-age={redirect.max_age}"),
            ("Referrer-Policy", "no-referrer"),
        ]
        return _plain(start_response, 302, b"", "302 Found", headers, method)

    def _failed(
        self,
        start_response: StartResponse,
        draft: AuditDraft,
        exc: Exception,
        cors: Headers,
        method: str,
    ) -> Iterable[bytes]:
        if isinstance(exc, BucketVaultError):
            error = exc
        else:
            # Type only: the exception's text may quote the request.
            log.error(
                "link open internal error type=%s request_id=%s",
                type(exc).__name__,
                draft.request_id,
            )
            error = Internal("internal error")
        try:
            self._recorder.failure(draft, error)
        except BucketVaultError:
            log.error("link open not recorded request_id=%s", draft.request_id)
            return _refuse(start_response, 503, cors, method)
        if isinstance(error, Unavailable):
            status = 503
        elif isinstance(error, Internal):
            status = 500
        else:
            status = 404
        return _refuse(start_response, status, cors, method)


def _refuse(
    start_response: StartResponse, status: int, headers: Headers, method: str
) -> list[bytes]:
    body, line = _PLAIN[status]
    return _plain(start_response, status, body, line, headers, method)


def _plain(
    start_response: StartResponse,
    status: int,
    body: bytes,
    line: str,
    headers: Headers,
    method: str,
) -> list[bytes]:
    out = [
        *headers,
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if status != 302:
        out.append(("Cache-Control", "no-store"))
    start_response(line, out)
    return [] if method == "HEAD" else [body]


__all__ = ["LinkApp"]
