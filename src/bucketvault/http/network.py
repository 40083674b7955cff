"""Network mode's checks: the client's address against the allowed networks, and (when
configured) an OIDC token verified against a JWKS.

The address is the socket peer (REMOTE_ADDR), never a header: X-Forwarded-For is not
read, so a client cannot claim another's network. RS256 and ES256 only: "none" and the
HMAC algorithms are never accepted, so a public JWKS key cannot be used as a MAC secret.
Expiry is checked against the injected clock, not PyJWT's own time.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

import jwt

from bucketvault.clock import Clock
from bucketvault.config import IpNetwork, OidcConfig
from bucketvault.errors import PermissionDenied, Unauthenticated

ALGORITHMS = ("RS256", "ES256")
# Clock skew allowed between the issuer and this service.
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class ClientNetworks:
    """The networks network-mode opens may come from (IPv4 and IPv6)."""

    networks: tuple[IpNetwork, ...]

    def allows(self, address: str) -> bool:
        """Whether the socket peer address is inside an allowed network."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(ip in net for net in self.networks if net.version == ip.version)

    def check(self, address: str) -> None:
        """PermissionDenied(NETWORK_CLIENT_NOT_ALLOWED) outside the networks."""
        if not self.allows(address):
            raise PermissionDenied("client not allowed", reason="NETWORK_CLIENT_NOT_ALLOWED")


def _refused() -> Unauthenticated:
    # One answer for every bad token; the audit record carries the reason only.
    return Unauthenticated("invalid token", reason="OIDC_TOKEN_INVALID")


@dataclass(frozen=True)
class OidcVerifier:
    """Verifies a bearer token (Authorization header) or the configured cookie."""

    config: OidcConfig
    clock: Clock
    _jwks: Any = field(repr=False, compare=False)

    @classmethod
    def from_config(cls, config: OidcConfig, clock: Clock) -> OidcVerifier:
        """Read the JWKS file now (a bad one stops start-up), or fetch the URL on use."""
        if config.jwks_file is not None:
            jwks: Any = jwt.PyJWKSet.from_dict(json.loads(config.jwks_file.read_text()))
        else:
            jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300)
        return cls(config, clock, jwks)

    def _key(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if isinstance(self._jwks, jwt.PyJWKClient):
            return self._jwks.get_signing_key_from_jwt(token).key
        keys: Sequence[Any] = self._jwks.keys
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise _refused()

    def token(self, environ: dict[str, Any]) -> str:
        """The bearer token, else the cookie's value, else ""."""
        auth = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if self.config.cookie and environ.get("HTTP_COOKIE"):
            try:
                morsel = SimpleCookie(str(environ["HTTP_COOKIE"])).get(self.config.cookie)
            except CookieError:
                return ""
            return morsel.value if morsel is not None else ""
        return ""

    def verify(self, token: str) -> str:
        """The token's subject, or Unauthenticated(OIDC_TOKEN_INVALID)."""
        if not token or len(token) > 16384:
            raise _refused()
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=list(ALGORITHMS),
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise _refused() from None
        now = self.clock.now().timestamp()
        try:
            expires = float(claims["exp"])
            not_before = float(claims.get("nbf", 0))
        except (TypeError, ValueError):
            raise _refused() from None
        if now >= expires + LEEWAY_SECONDS or now + LEEWAY_SECONDS < not_before:
            raise _refused()
        return str(claims["sub"])


__all__ = ["ALGORITHMS", "ClientNetworks", "OidcVerifier"]
