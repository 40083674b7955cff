"""Customer-supplied URLs are untrusted: the service would call them on a customer's say-so.

Endpoints, account URLs and token URIs are checked here before they are stored or
called: https only, no loopback / link-local / private / metadata addresses, and token
endpoints only from an allow-list. Development and tests relax it explicitly in config.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bucketvault.errors import InvalidArgument

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

Resolver = Callable[[str], Sequence[str]]


def _resolve(host: str) -> Sequence[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    except OSError:
        return []


@dataclass(frozen=True)
class UrlPolicy:
    # Allow http:// and loopback/private addresses (emulators on 127.0.0.1). Off in production.
    allow_insecure: bool = False
    # Exact token endpoint URLs a service-account key may name.
    token_uri_allowlist: frozenset[str] = frozenset({GOOGLE_TOKEN_URI})
    resolver: Resolver = field(default=_resolve, repr=False, compare=False)

    def check_endpoint(self, url: str, *, field: str) -> str:
        """Return the URL normalised (no trailing slash) if the service may call it."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidArgument(
                f"{field} must be an absolute https URL", reason="INVALID_ENDPOINT", field=field
            )
        if parts.username or parts.password:
            raise InvalidArgument(
                f"{field} must not carry user information", reason="INVALID_ENDPOINT", field=field
            )
        if parts.query or parts.fragment:
            raise InvalidArgument(
                f"{field} must not have a query or fragment", reason="INVALID_ENDPOINT", field=field
            )
        if not self.allow_insecure:
            if parts.scheme != "https":
                raise InvalidArgument(
                    f"{field} must use https", reason="INSECURE_ENDPOINT", field=field
                )
            self._check_host(parts.hostname, field)
        return url.rstrip("/")

    def check_token_uri(self, url: str, *, field: str = "token_uri") -> str:
        if url not in self.token_uri_allowlist:
            raise InvalidArgument(
                f"{field} is not an allowed token endpoint",
                reason="TOKEN_URI_NOT_ALLOWED",
                field=field,
            )
        return url

    def _check_host(self, host: str, field: str) -> None:
        try:
            addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            if host.lower() in ("localhost", "metadata", "metadata.google.internal"):
                raise InvalidArgument(
                    f"{field} points at a local or metadata host",
                    reason="FORBIDDEN_ENDPOINT",
                    field=field,
                ) from None
            addresses = self.resolver(host)
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise InvalidArgument(
                    f"{field} resolves to a non-public address",
                    reason="FORBIDDEN_ENDPOINT",
                    field=field,
                )


__all__ = ["GOOGLE_TOKEN_URI", "UrlPolicy"]
