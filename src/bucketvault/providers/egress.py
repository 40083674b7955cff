"""The one guard on outbound connections to customer-influenced endpoints.

urlpolicy checks a URL when it is registered; a name can resolve elsewhere later (DNS
rebinding, a short TTL, a changed record). So every connection the providers open
resolves the host here, checks every answer with ``UrlPolicy.check_connect`` and
connects to a checked address, never to the name: what was checked is what is reached.
TLS still verifies, and SNI and Host still name, the host itself (urllib3 takes both
from the connection's host, not from the socket).

botocore, requests (google-auth) and azure-core's RequestsTransport all sit on urllib3,
so one connection class per scheme, built here, covers every cloud. Redirects are not
followed: botocore never follows them, the requests sessions built here refuse them
(ENDPOINT_REDIRECT) and azure pipelines are told not to (``permit_redirects=False``).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import botocore.awsrequest
import botocore.exceptions
import botocore.httpsession
import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as _connection

from bucketvault.errors import BucketVaultError, FailedPrecondition
from bucketvault.urlpolicy import UrlPolicy


class _GuardedConnection:
    """Mixed in before a urllib3 connection class: its socket comes from the guard."""

    _egress: Egress

    def _new_conn(self) -> socket.socket:
        return self._egress.open(self)


class Egress:
    """Connections, sessions and clients whose every socket passes the URL policy."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        attrs: dict[str, Any] = {"_egress": self}
        http = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), attrs)
        https = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), attrs)
        self.pools: dict[str, type[HTTPConnectionPool]] = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        aws_http = type(
            "GuardedAWSHTTPConnection",
            (_GuardedConnection, botocore.awsrequest.AWSHTTPConnection),
            attrs,
        )
        aws_https = type(
            "GuardedAWSHTTPSConnection",
            (_GuardedConnection, botocore.awsrequest.AWSHTTPSConnection),
            attrs,
        )
        self.aws_pools: dict[str, type[HTTPConnectionPool]] = {
            "http": type(
                "GuardedAWSHTTPPool",
                (botocore.awsrequest.AWSHTTPConnectionPool,),
                {"ConnectionCls": aws_http},
            ),
            "https": type(
                "GuardedAWSHTTPSPool",
                (botocore.awsrequest.AWSHTTPSConnectionPool,),
                {"ConnectionCls": aws_https},
            ),
        }

    def __repr__(self) -> str:
        return f"Egress(allow_insecure={self.policy.allow_insecure})"

    def addresses(self, host: str) -> list[str]:
        """The addresses host may be reached at now, every one checked; raises
        FailedPrecondition(ENDPOINT_NOT_ALLOWED) if any answer is refused."""
        bare = host.strip("[]")
        try:
            answers: list[str] = [str(ipaddress.ip_address(bare))]
        except ValueError:
            # One answer refused refuses the name: which answer a retry would get is
            # the attacker's choice.
            answers = list(dict.fromkeys(self.policy.resolver(bare)))
        for address in answers:
            self.policy.check_connect(address, host=bare)
        return answers

    def open(self, conn: Any) -> socket.socket:
        """The socket for a urllib3 connection: resolved, checked, connected by address.
        Errors are urllib3's own, so every library retries and reports them as before."""
        host: str = conn.host
        addresses = self.addresses(host)
        if not addresses:
            raise NameResolutionError(host, conn, socket.gaierror(socket.EAI_NONAME, "no address"))
        failure: Exception | None = None
        for address in addresses:
            try:
                return _connection.create_connection(
                    (address, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError:
                failure = ConnectTimeoutError(
                    conn, f"Connection to {host} timed out. (connect timeout={conn.timeout})"
                )
            except OSError as exc:
                failure = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
        assert failure is not None
        raise failure

    def session(self, *, pool_maxsize: int = 10) -> requests.Session:
        """A requests session (google-auth, JSON APIs, azure-core) behind the guard."""
        session = _NoRedirectSession()
        adapter = _GuardedAdapter(self, pool_connections=2, pool_maxsize=pool_maxsize)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def guard_boto(self, client: Any) -> Any:
        """The botocore client, its connections now behind the guard (before its first
        call: pools are made lazily from the classes replaced here)."""
        # botocore offers no public seam for its HTTP session; fail loudly if its shape
        # changes rather than run unguarded (tests/core/test_egress.py pins this).
        http = client._endpoint.http_session
        pools = getattr(http, "_pool_classes_by_scheme", None)
        if not isinstance(http, botocore.httpsession.URLLib3Session) or not isinstance(pools, dict):
            raise TypeError("botocore's HTTP session changed: the egress guard cannot attach")
        # The manager (and every proxy manager) holds this very dict.
        pools.update(self.aws_pools)
        client.meta.events.register("after-call-error", _unwrap_refusal)
        return client

    def azure_transport(self, **options: Any) -> RequestsTransport:
        """An azure-core RequestsTransport over a guarded session (it owns and closes it)."""
        return RequestsTransport(session=self.session(), session_owner=True, **options)


def _unwrap_refusal(exception: Exception, **_: Any) -> None:
    """botocore wraps any unexpected error in HTTPClientError; a refusal of ours is
    raised as itself, so callers see ENDPOINT_NOT_ALLOWED, not an unreachable endpoint."""
    if isinstance(exception, botocore.exceptions.HTTPClientError):
        inner = exception.kwargs.get("error")
        if isinstance(inner, BucketVaultError):
            raise inner from exception


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, egress: Egress, **kwargs: Any) -> None:
        self._egress = egress
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._egress.pools

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._egress.pools
        return manager


class _NoRedirectSession(requests.Session):
    """Never follows a redirect: a 3xx from an endpoint is an error, since its Location
    could name any host (a private one included) and would carry the request's
    credentials there."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        wanted = kwargs.pop("allow_redirects", True)
        response = super().send(request, allow_redirects=False, **kwargs)
        if wanted and response.is_redirect:
            response.close()
            raise FailedPrecondition(
                f"the endpoint {urlsplit(request.url or '').hostname} "
                f"answered {response.status_code} (a redirect): redirects are not followed",
                reason="ENDPOINT_REDIRECT",
            )
        return response


__all__ = ["Egress"]
