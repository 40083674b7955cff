"""Canonicalisation shared by the query-string signers (AWS SigV4, GCS V4).

Both schemes percent-encode the same way (RFC 3986 unreserved characters kept) and
sort the canonical query the same way, so they share this code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote

# The byte-identity tests with botocore and google-cloud-storage pin these exact rules.
_PATH_SAFE = "/~"
_VALUE_SAFE = "-_.~"


def encode_path(key: str) -> str:
    """Object key -> URL path component, encoded exactly once, '/' kept."""
    return quote(key, safe=_PATH_SAFE)


def encode_value(value: str) -> str:
    """Query name or value -> RFC 3986 encoding (space is %20, never '+')."""
    return quote(value, safe=_VALUE_SAFE)


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Encode then sort by encoded name (then value), joined with '&'."""
    encoded = sorted((encode_value(k), encode_value(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


__all__ = ["canonical_query", "encode_path", "encode_value", "hmac_sha256", "sha256_hex"]
