"""Customer-supplied URLs are untrusted: the service would call them on a customer's say-so.

Endpoints, account URLs and token URIs are checked here before they are stored or
called: https only, no loopback / link-local / private / CGNAT / multicast / metadata
addresses (also when spelled as a short, decimal, octal or hex IPv4, or embedded in an
IPv6 address), no name that resolves to one, and token endpoints only from an allow-list.
Development and tests relax it explicitly in config.

A name checked at registration can later resolve elsewhere (DNS rebinding): every
connection re-checks the address it is about to use with ``UrlPolicy.check_connect``
(bucketvault.providers.egress does it for every provider).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bucketvault.errors import FailedPrecondition, InvalidArgument

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

Resolver = Callable[[str], Sequence[str]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Printable ASCII without space or backslash: parsers differ on everything else (Python
# drops tabs and newlines inside a URL, WHATWG reads "\" as "/", IDNA maps look-alikes).
_URL_CHARS = re.compile(r"^[\x21-\x5b\x5d-\x7e]+$")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMBER = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
# host[:port], the host a name or a bracketed IPv6 literal: nothing else may sit there.
_NETLOC = re.compile(r"^(?:\[[0-9A-Za-z:.%_-]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$")

# Names of metadata services and of hosts that are this machine or its network.
_FORBIDDEN_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)
# Suffixes reserved for local or private use: never a customer's public endpoint.
_FORBIDDEN_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".localdomain",
    ".home.arpa",
    ".svc",
    ".cluster.local",
)
# Metadata and host-agent addresses, public-looking ones included.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # ECS task credentials
        "168.63.129.16",  # Azure WireServer: a public address only Azure hosts answer
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS Time Sync over IPv6
    )
)
# IPv6 ranges that carry (or translate to) an IPv4 address; the embedded one is checked.
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TEREDO = ipaddress.ip_network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Special-purpose IPv4 blocks, whole: Python's is_global makes exceptions inside some.
_RESERVED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "240.0.0.0/4")
)


def _resolve(host: str) -> Sequence[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    except (OSError, UnicodeError, ValueError):
        return []


def _forbidden(message: str, field: str, reason: str = "FORBIDDEN_ENDPOINT") -> InvalidArgument:
    return InvalidArgument(f"{field} {message}", reason=reason, field=field)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _metadata_problem(ip: IPAddress) -> str | None:
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if ip in _METADATA or embedded in _METADATA:
        return "is a cloud metadata address"
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why the service must not connect to ip, or None if it may."""
    if ip in _METADATA:
        return "is a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            return "is a scoped (link-local) address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"embeds an IPv4 address that {problem}" if problem else None
        if ip in _IPV4_COMPATIBLE or ip in _NAT64_LOCAL or ip in _TEREDO:
            return "is a transition address that may reach a private network"
    elif ip in _CGNAT:
        return "is a carrier-grade NAT address"
    elif any(ip in net for net in _RESERVED_V4):
        return "is a reserved address"
    if ip.is_multicast:
        return "is a multicast address"
    if ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return "is a loopback, link-local or unspecified address"
    if not ip.is_global:
        return "is a private or reserved address"
    return None


def check_address(ip: str, *, field: str = "address") -> None:
    """Refuse an address the service must not connect to (call it at connect time too)."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        raise _forbidden("is not an IP address", field, "INVALID_ENDPOINT") from None
    problem = address_problem(parsed)
    if problem is not None:
        raise _forbidden(f"resolves to a non-public address: it {problem}", field)


def _legacy_ipv4(host: str, field: str) -> ipaddress.IPv4Address | None:
    """A host that connect() would read as IPv4 (inet_aton forms: 127.1, 0x7f.1,
    017700000001, 2130706433), or None if it is a name."""
    parts = host.split(".")
    if not _NUMBER.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMBER.match(p) for p in parts):
        # WHATWG refuses a host whose last label is a number but is no IPv4 address.
        raise _forbidden(
            "has a numeric host that is not an IPv4 address", field, "INVALID_ENDPOINT"
        )
    values = []
    for part in parts:
        if part.startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise _forbidden("has a malformed octal IPv4 host", field, "INVALID_ENDPOINT")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise _forbidden("has an IPv4 host out of range", field, "INVALID_ENDPOINT")
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _host(netloc_host: str, field: str) -> str | IPAddress:
    """The host as a name (lower case, no trailing dot) or an address; malformed: refused."""
    host = netloc_host.lower()
    if ":" in host:
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            raise _forbidden("has a malformed IPv6 host", field, "INVALID_ENDPOINT") from None
    host = host.removesuffix(".")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise _forbidden("has a malformed host name", field, "INVALID_ENDPOINT")
    legacy = _legacy_ipv4(host, field)
    return legacy if legacy is not None else host


@dataclass(frozen=True)
class UrlPolicy:
    # Allow http:// and loopback/private addresses (emulators on 127.0.0.1). Off in production.
    allow_insecure: bool = False
    # Exact token endpoint URLs a service-account key may name.
    token_uri_allowlist: frozenset[str] = frozenset({GOOGLE_TOKEN_URI})
    resolver: Resolver = field(default=_resolve, repr=False, compare=False)

    def check_endpoint(self, url: str, *, field: str) -> str:
        """Return the URL normalised (no trailing slash) if the service may call it."""
        if not _URL_CHARS.match(url):
            raise _forbidden(
                "must be printable ASCII without spaces (punycode for other names)",
                field,
                "INVALID_ENDPOINT",
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            # urlsplit refuses a bad IPv6 literal or port; its message would quote the URL.
            raise _forbidden("is not a valid URL", field, "INVALID_ENDPOINT") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise _forbidden("must be an absolute https URL", field, "INVALID_ENDPOINT")
        if "@" in parts.netloc:
            raise _forbidden("must not carry user information", field, "INVALID_ENDPOINT")
        if not _NETLOC.match(parts.netloc):
            raise _forbidden("has a malformed host or port", field, "INVALID_ENDPOINT")
        if parts.query or parts.fragment or "?" in url or "#" in url:
            raise _forbidden("must not have a query or fragment", field, "INVALID_ENDPOINT")
        if port == 0:
            raise _forbidden("has port 0", field, "INVALID_ENDPOINT")
        host = _host(parts.hostname, field)
        if not self.allow_insecure:
            if parts.scheme != "https":
                raise _forbidden("must use https", field, "INSECURE_ENDPOINT")
            self._check_host(host, field)
        return url.rstrip("/")

    def check_token_uri(self, url: str, *, field: str = "token_uri") -> str:
        """The URL if it is on the allow-list of token endpoints."""
        if url not in self.token_uri_allowlist:
            raise InvalidArgument(
                f"{field} is not an allowed token endpoint",
                reason="TOKEN_URI_NOT_ALLOWED",
                field=field,
            )
        return url

    def check_address(self, ip: str, *, field: str = "address") -> None:
        """``check_address`` unless insecure endpoints are allowed (emulators)."""
        if not self.allow_insecure:
            check_address(ip, field=field)

    def check_connect(self, ip: str, *, host: str) -> None:
        """Refuse the address a connection to host is about to use (after DNS).

        Insecure mode (emulators on loopback) still refuses metadata addresses: no
        emulator lives there, and a rebinding name reaching one hands out host keys."""
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            parsed = None
        if parsed is None:
            problem: str | None = "is not an IP address"
        elif self.allow_insecure:
            problem = _metadata_problem(parsed)
        else:
            problem = address_problem(parsed)
        if problem is not None:
            # The address itself stays out of the message: it is this network's business.
            raise FailedPrecondition(
                f"the endpoint host {host} now resolves to an address that {problem}: "
                "the connection was refused",
                reason="ENDPOINT_NOT_ALLOWED",
            )

    def _check_host(self, host: str | IPAddress, field: str) -> None:
        if not isinstance(host, str):
            problem = address_problem(host)
            if problem is not None:
                raise _forbidden(f"points at an address that {problem}", field)
            return
        if host in _FORBIDDEN_NAMES or host.endswith(_FORBIDDEN_SUFFIXES):
            raise _forbidden("points at a local or metadata host", field)
        addresses = self.resolver(host)
        if not addresses:
            # Accepting it would let a later DNS answer point it anywhere.
            raise _forbidden(
                "does not resolve: register it once its name is in DNS",
                field,
                "ENDPOINT_UNRESOLVABLE",
            )
        for address in addresses:
            check_address(address, field=field)


__all__ = ["GOOGLE_TOKEN_URI", "UrlPolicy", "address_problem", "check_address"]
