"""Link tokens: ``<key id>.<claims>.<mac>``, base64url, authenticated by HMAC-SHA256.

The claims (link id, tenant, mount, the key or prefix, methods, expiry, the signed URLs'
lifetime) travel in the token, so opening a link needs no lookup to authenticate it: the
MAC under a link key (a service key kept under the KEK, see app/servicekeys.py) is the
proof. HMAC rather than Ed25519: only this service mints and checks tokens, and a MAC
check is a few microseconds on the open path. The claims are readable by whoever holds
the link (base64, not encrypted): they name ids and a key the link's URL shows anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bucketvault.errors import NotFound
from bucketvault.models import Method

# Tokens longer than this are not parsed (a key of 1024 bytes fits well within it).
MAX_TOKEN_CHARS = 4096
LINK_ID = re.compile(r"^lnk_[0-9a-f]{20}$")
_KEY_ID = re.compile(r"^lk_[0-9a-f]{16}$")
_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
_DOMAIN = b"bucketvault-link-v1\x00"
_METHODS = {"G": Method.GET, "H": Method.HEAD}
_LETTERS = {m: c for c, m in _METHODS.items()}


@dataclass(frozen=True)
class LinkClaims:
    """What one link allows."""

    link_id: str
    tenant: str
    mount_id: str
    # The absolute object key (exact) or the absolute key prefix every key must start with.
    prefix: str
    exact: bool
    methods: frozenset[Method]
    # None: the link never expires (it still dies with its mount's credential).
    expires_at: datetime | None
    # The lifetime of the signed URLs an open redirects to (before the mount's caps).
    url_ttl_seconds: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _gone() -> NotFound:
    # One answer for every bad token: a forged, altered or unknown-key token alike.
    return NotFound("no such link", reason="LINK_NOT_FOUND")


@dataclass(frozen=True)
class LinkCodec:
    """Mints tokens with the current link key, verifies them with any trusted one."""

    current_key_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def _mac(self, key_id: str, body: str) -> bytes:
        signed = _DOMAIN + key_id.encode("ascii") + b"." + body.encode("ascii")
        return hmac.new(self.keys[key_id], signed, hashlib.sha256).digest()

    def mint(self, claims: LinkClaims) -> str:
        """The token for claims."""
        payload = {
            "v": 1,
            "i": claims.link_id,
            "t": claims.tenant,
            "m": claims.mount_id,
            "p": claims.prefix,
            "x": 1 if claims.exact else 0,
            "h": "".join(sorted(_LETTERS[m] for m in claims.methods)),
            "e": int(claims.expires_at.timestamp()) if claims.expires_at else 0,
            "u": claims.url_ttl_seconds,
        }
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        body = _b64(text.encode("utf-8", "surrogatepass"))
        kid = self.current_key_id
        return f"{kid}.{body}.{_b64(self._mac(kid, body))}"

    def verify(self, token: str) -> LinkClaims:
        """The claims of an authentic token, or NotFound(LINK_NOT_FOUND). Expiry and
        revocation are the caller's to check."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise _gone()
        kid, body, mac = token.split(".")
        if not _KEY_ID.match(kid) or kid not in self.keys:
            raise _gone()
        try:
            given = _unb64(mac)
        except (ValueError, binascii.Error):
            raise _gone() from None
        if not hmac.compare_digest(given, self._mac(kid, body)):
            raise _gone()
        # Authentic from here on: what follows guards against our own bugs, not forgery.
        try:
            payload = json.loads(_unb64(body).decode("utf-8"))
            expires = int(payload["e"])
            claims = LinkClaims(
                link_id=str(payload["i"]),
                tenant=str(payload["t"]),
                mount_id=str(payload["m"]),
                prefix=str(payload["p"]),
                exact=bool(payload["x"]),
                methods=frozenset(_METHODS[c] for c in str(payload["h"])),
                expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
                url_ttl_seconds=int(payload["u"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _gone() from None
        if payload.get("v") != 1 or not LINK_ID.match(claims.link_id) or not claims.methods:
            raise _gone()
        return claims


__all__ = ["LINK_ID", "MAX_TOKEN_CHARS", "LinkClaims", "LinkCodec"]
