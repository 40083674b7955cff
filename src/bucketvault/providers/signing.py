"""Stages shared by the query-string signers (AWS SigV4, GCS V4).

Both schemes percent-encode the same way (RFC 3986 unreserved characters kept), sort
the canonical query the same way, lay out the canonical request and the string to
sign the same way and (SigV4, GOOG4-HMAC) sign with HMAC-SHA256 under a chained
derived key. Each stage is an object built once per batch and applied per key:

    CanonicalRequest(...).render(path) -> StringToSign(...).render(request)
        -> HmacSha256(key).hexdigest(to_sign)

The signers' plain stage functions are one-line calls of these same objects, so the
published-vector tests and the batch hot path run the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote

# The byte-identity tests with botocore and google-cloud-storage pin these exact rules.
_PATH_SAFE = "/~"
_VALUE_SAFE = "-_.~"
# Keys made only of characters quote() keeps need no encoding; most keys are like that,
# and this search costs a sixth of what quote() does.
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9_.~/-]").search

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# HMAC (RFC 2104) pads for SHA-256's 64-byte block.
_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def encode_path(key: str) -> str:
    """Object key -> URL path component, encoded exactly once, '/' kept."""
    return quote(key, safe=_PATH_SAFE) if _NEEDS_QUOTING(key) else key


def encode_value(value: str) -> str:
    """Query name or value -> RFC 3986 encoding (space is %20, never '+')."""
    return quote(value, safe=_VALUE_SAFE)


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Encode then sort by encoded name (then value), joined with '&'."""
    encoded = sorted((encode_value(k), encode_value(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block with its trailing newline, signed header names)."""
    # Names lowercased and trimmed, values' whitespace runs collapsed, repeated names
    # joined with ',': botocore and google-cloud-storage both do exactly this.
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower().strip(), []).append(" ".join(value.split()))
    ordered = sorted((name, ",".join(values)) for name, values in merged.items())
    block = "".join(f"{name}:{value}\n" for name, value in ordered)
    return block, ";".join(name for name, _ in ordered)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Raw HMAC-SHA256 of message under key."""
    return hmac.digest(key, message, "sha256")


def derive_key(seed: bytes, parts: Iterable[str]) -> bytes:
    """A chained derived key: HMAC(...HMAC(HMAC(seed, p1), p2)..., pn)."""
    key = seed
    for part in parts:
        key = hmac_sha256(key, part.encode("utf-8"))
    return key


class CanonicalRequest:
    """Stage 1 for a batch: every line fixed but the path, which ``render`` fills in."""

    __slots__ = ("_head", "_tail")

    def __init__(
        self,
        method: str,
        query: str,
        header_block: str,
        signed_headers: str,
        *,
        path_prefix: str = "",
        payload_hash: str = UNSIGNED_PAYLOAD,
    ) -> None:
        # path_prefix is the part of the encoded path every key of the batch shares
        # ('/' or '/bucket/'); the header block already ends with a newline.
        self._head = f"{method}\n{path_prefix}"
        self._tail = f"\n{query}\n{header_block}\n{signed_headers}\n{payload_hash}"

    def render(self, path: str) -> str:
        """The canonical request for one encoded path (after the prefix)."""
        return f"{self._head}{path}{self._tail}"


class StringToSign:
    """Stage 2 for a batch: algorithm, timestamp and scope fixed; ``render`` adds the digest."""

    __slots__ = ("_head",)

    def __init__(self, algorithm: str, timestamp: str, scope: str) -> None:
        self._head = f"{algorithm}\n{timestamp}\n{scope}\n"

    def render(self, request: str) -> str:
        """The string to sign for one canonical request (hashed here)."""
        return self._head + hashlib.sha256(request.encode()).hexdigest()


class HmacSha256:
    """Stage 3 for a batch: HMAC-SHA256 under one key, its pads hashed once."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        # Per message only two hash-state copies remain: the pads' compression is
        # done here, not once per key as hmac.digest() would.
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def __repr__(self) -> str:
        return "HmacSha256(<hidden>)"

    def hexdigest(self, message: str) -> str:
        """Hex HMAC of the UTF-8 message: the SigV4 / GOOG4-HMAC signature."""
        inner = self._inner.copy()
        # encode() without arguments is UTF-8 and skips argument parsing (per key).
        inner.update(message.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


__all__ = [
    "UNSIGNED_PAYLOAD",
    "CanonicalRequest",
    "HmacSha256",
    "StringToSign",
    "canonical_headers",
    "canonical_query",
    "derive_key",
    "encode_path",
    "encode_value",
    "hmac_sha256",
]
