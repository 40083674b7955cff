"""The link listener's WSGI application: ``GET|HEAD /l/<token>/<key>`` (and, in network
mode, ``/n/<tenant>/<mount>/<key>``) -> 302 to a signed URL, nothing else. Bytes never
pass through it.

Every GET and HEAD of a link is audited (action ``link.open``, the client address as the
peer, the key, the outcome and reason) before it is answered: no record, 503 and no
redirect. Every refusal is ``404`` with one plain body, so an answer never tells a
forged token from a revoked one or a missing mount; the record says which. Network mode
answers 403 to an address outside its networks and 401 to a bad OIDC token, both without
detail. Opens over the client's or the link's rate limit get 429 with Retry-After before
any signing, audited as denied (LINK_RATE_LIMITED). Every answer to an open is counted
by mode and outcome (Metrics.link_open).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from bucketvault.app.common import Recorder
from bucketvault.app.links import Links, NetworkOpenInput, OpenInput, Redirect
from bucketvault.audit.draft import AuditDraft, drafting
from bucketvault.audit.event import KeyList, bounded
from bucketvault.errors import (
    BucketVaultError,
    Internal,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from bucketvault.http.network import ClientNetworks, OidcVerifier
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.models import Method
from bucketvault.observe.metrics import NO_METRICS, Metrics

log = logging.getLogger("bucketvault.http")

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]
_PLAIN = {
    401: (b"unauthorized\n", "401 Unauthorized"),
    403: (b"forbidden\n", "403 Forbidden"),
    404: (b"not found\n", "404 Not Found"),
    405: (b"method not allowed\n", "405 Method Not Allowed"),
    429: (b"too many requests\n", "429 Too Many Requests"),
    500: (b"internal error\n", "500 Internal Server Error"),
    503: (b"unavailable\n", "503 Service Unavailable"),
}
_METHODS = {"GET": Method.GET, "HEAD": Method.HEAD}
# The metric outcome of a refusal, by reason (any other NotFound: "not_found").
_OUTCOMES = {
    "LINK_REVOKED": "revoked",
    "LINK_EXPIRED": "expired",
    "LINK_RATE_LIMITED": "rate_limited",
    "NETWORK_CLIENT_NOT_ALLOWED": "forbidden",
    "OIDC_TOKEN_INVALID": "unauthenticated",
    "CREDENTIAL_REVOKED": "credential_revoked",
}


class _Throttled(PermissionDenied):
    """Over a rate limit: audited as a denial, answered 429 with Retry-After."""

    def __init__(self, wait: float) -> None:
        super().__init__("too many opens", reason="LINK_RATE_LIMITED")
        self.wait = wait


class Network:
    """Network mode's admission: the client networks and an optional OIDC verifier."""

    def __init__(self, networks: ClientNetworks, oidc: OidcVerifier | None = None) -> None:
        self.networks = networks
        self.oidc = oidc


class LinkApp:
    def __init__(
        self,
        links: Links,
        recorder: Recorder,
        limiter: TokenBuckets,
        cors_origins: Iterable[str] = (),
        *,
        link_limiter: TokenBuckets | None = None,
        network: Network | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._links = links
        self._recorder = recorder
        self._limiter = limiter
        # Per link id (per tenant/mount in network mode), across every client: a link
        # posted somewhere public cannot be opened at any rate by many addresses.
        self._link_limiter = link_limiter
        self._network = network
        self._metrics = metrics
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
        mode = "token" if path.startswith("/l/") else "network"
        if mode == "network" and (self._network is None or not path.startswith("/n/")):
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
        # The socket peer, never a forwarded header (see http/network.py).
        client = str(environ.get("REMOTE_ADDR", ""))
        return self._open(environ, start_response, method, path, client, cors, mode)

    def _throttle(self, limiter: TokenBuckets | None, who: str) -> None:
        wait = limiter.wait(who) if limiter is not None else 0.0
        if wait > 0:
            raise _Throttled(wait)

    def _open(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        path: str,
        client: str,
        cors: Headers,
        mode: str,
    ) -> Iterable[bytes]:
        try:
            # PEP 3333: PATH_INFO is the (percent-decoded) bytes as latin-1.
            text = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            text = ""
        rest = text[len("/l/") :]
        if mode == "token":
            token, _, key = rest.partition("/")
        else:
            tenant, _, tail = rest.partition("/")
            mount_id, _, key = tail.partition("/")
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
                self._throttle(self._limiter, client)
                if not text:
                    raise NotFound("no such link", reason="INVALID_KEY")
                if mode == "token":
                    link_id = self._links.link_id(token)
                    if link_id:
                        self._throttle(self._link_limiter, link_id)
                    redirect = self._links.open(OpenInput(token, key, _METHODS[method]), request_id)
                else:
                    redirect = self._open_network(
                        environ,
                        NetworkOpenInput(tenant, mount_id, key, _METHODS[method], ""),
                        client,
                        request_id,
                    )
            except Exception as exc:
                return self._failed(start_response, draft, exc, cors, method, mode)
        self._metrics.link_open(mode, "redirected")
        headers = [
            *cors,
            ("Location", redirect.url),
            ("Cache-Control", f"private, max-age={redirect.max_age}"),
            ("Referrer-Policy", "no-referrer"),
        ]
        return _plain(start_response, 302, b"", "302 Found", headers, method)

    def _open_network(
        self, environ: dict[str, Any], req: NetworkOpenInput, client: str, request_id: str
    ) -> Redirect:
        assert self._network is not None
        # Admission before anything is read: an outside address learns nothing.
        self._network.networks.check(client)
        principal = f"network:{client}"
        if self._network.oidc is not None:
            oidc = self._network.oidc
            principal = "oidc:" + oidc.verify(oidc.token(environ))
        self._throttle(self._link_limiter, f"n:{req.tenant}/{req.mount_id}")
        return self._links.open_network(
            NetworkOpenInput(req.tenant, req.mount_id, req.key, req.method, bounded(principal)),
            request_id,
        )

    def _failed(
        self,
        start_response: StartResponse,
        draft: AuditDraft,
        exc: Exception,
        cors: Headers,
        method: str,
        mode: str,
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
            self._metrics.link_open(mode, "unrecorded")
            return _refuse(start_response, 503, cors, method)
        headers = cors
        if isinstance(error, _Throttled):
            status = 429
            headers = [*cors, ("Retry-After", str(max(1, math.ceil(error.wait))))]
        elif isinstance(error, Unauthenticated):
            status = 401
        elif isinstance(error, PermissionDenied) and error.reason == "NETWORK_CLIENT_NOT_ALLOWED":
            status = 403
        elif isinstance(error, Unavailable):
            status = 503
        elif isinstance(error, Internal):
            status = 500
        else:
            status = 404
        outcome = {401: "unauthenticated", 429: "rate_limited", 500: "error", 503: "unavailable"}
        self._metrics.link_open(
            mode, outcome.get(status) or _OUTCOMES.get(error.reason, "not_found")
        )
        return _refuse(start_response, status, headers, method)


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


__all__ = ["LinkApp", "Network"]
