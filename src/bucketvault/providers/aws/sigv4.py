"""SigV4 query-string presigning for S3, staged and built for batches.

The stages (canonical request -> string to sign -> signature) are plain functions that
tests can check one by one. ``BatchPresigner`` is the hot path: everything that does
not depend on the object key (canonical query, headers, scope, signing key, the URL's
query string) is computed once per batch, so each key costs one SHA-256 and one HMAC.
Output is byte-identical to botocore's ``generate_presigned_url`` (the differential
tests pin it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bucketvault.providers.signing import canonical_query, encode_path, encode_value

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# SigV4 query auth refuses anything longer than seven days.
MAX_EXPIRES_SECONDS = 604800

# Keys made only of these characters need no percent-encoding: skip quote() for them.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~/-]*\Z").match


@dataclass(frozen=True)
class SigningIdentity:
    """The key pair (and session token) a URL is signed with."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class PresignTarget:
    """Where the object lives: scheme+authority, path before the key, region."""

    origin: str
    host: str
    path_prefix: str
    region: str


@dataclass(frozen=True)
class PresignParams:
    """Everything about a batch except the keys."""

    method: str
    expires_in: int
    signed_at: datetime
    # Operation parameters in botocore's order (response-* overrides), unencoded.
    query: Sequence[tuple[str, str]] = ()
    # Headers the client must send, signed with host ({} for none).
    headers: Mapping[str, str] = field(default_factory=dict)


def amz_date(when: datetime) -> str:
    """Datetime (UTC) -> the X-Amz-Date basic format."""
    return when.strftime("%Y%m%dT%H%M%SZ")


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 derived key for one day, region and service."""
    k = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    k = hmac.digest(k, region.encode("utf-8"), "sha256")
    k = hmac.digest(k, service.encode("utf-8"), "sha256")
    return hmac.digest(k, b"aws4_request", "sha256")


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str = UNSIGNED_PAYLOAD,
) -> str:
    """Stage 1: method, encoded path, canonical query, headers, signed headers, payload."""
    names = sorted(headers)
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
    return f"{method}\n{path}\n{query}\n{lines}\n{';'.join(names)}\n{payload_hash}"


def string_to_sign(timestamp: str, scope: str, request: str) -> str:
    """Stage 2: algorithm, timestamp, scope and the hash of the canonical request."""
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def signature(signing_key: bytes, to_sign: str) -> str:
    """Stage 3: hex HMAC-SHA256 of the string to sign."""
    return hmac.new(signing_key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class SigningKeyCache:
    """Derived keys per (access key, date, region, service); thread-safe and bounded."""

    _LIMIT = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    def get(self, identity: SigningIdentity, date: str, region: str, service: str) -> bytes:
        """Return the derived key, computing it at most once per day and scope."""
        slot = (identity.access_key_id, date, region, service)
        key = self._keys.get(slot)
        if key is None:
            key = derive_signing_key(identity.secret_access_key, date, region, service)
            with self._lock:
                if len(self._keys) >= self._LIMIT:
                    # Old days and rotated session keys are never used again.
                    self._keys.clear()
                self._keys[slot] = key
        return key

    def clear(self) -> None:
        """Forget every derived key."""
        with self._lock:
            self._keys.clear()


class BatchPresigner:
    """Presigns many keys that share a target, identity and parameters."""

    __slots__ = ("_cr_head", "_cr_tail", "_inner", "_outer", "_sts_head", "_url_head", "_url_tail")

    def __init__(
        self,
        target: PresignTarget,
        identity: SigningIdentity,
        params: PresignParams,
        signing_key: bytes,
    ) -> None:
        timestamp = amz_date(params.signed_at)
        scope = f"{timestamp[:8]}/{target.region}/s3/aws4_request"
        headers = {"host": target.host}
        headers.update({name.lower(): value for name, value in params.headers.items()})
        signed_headers = ";".join(sorted(headers))
        auth = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{identity.access_key_id}/{scope}"),
            ("X-Amz-Date", timestamp),
            ("X-Amz-Expires", str(params.expires_in)),
            ("X-Amz-SignedHeaders", signed_headers),
        ]
        if identity.session_token:
            auth.append(("X-Amz-Security-Token", identity.session_token))
        # botocore puts operation parameters first, then auth parameters, signature last.
        url_query = "&".join(
            f"{encode_value(k)}={encode_value(v)}" for k, v in (*params.query, *auth)
        )
        query = canonical_query((*params.query, *auth))
        empty = canonical_request(params.method, "", query, headers)
        # The canonical request is "<method>\n<path>\n<rest>": only the path varies per key.
        self._cr_head = (params.method + "\n" + target.path_prefix).encode("utf-8")
        self._cr_tail = empty[len(params.method) + 1 :].encode("utf-8")
        self._sts_head = f"{ALGORITHM}\n{timestamp}\n{scope}\n"
        self._url_head = target.origin + target.path_prefix
        self._url_tail = "?" + url_query + "&X-Amz-Signature="
        # HMAC with the key's pads pre-hashed: per key only two hash copies remain.
        block = signing_key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def url(self, key: str) -> str:
        """The presigned URL for one object key."""
        path = key if _PLAIN_KEY(key) else encode_path(key)
        digest = hashlib.sha256(self._cr_head + path.encode("utf-8") + self._cr_tail).hexdigest()
        inner = self._inner.copy()
        inner.update((self._sts_head + digest).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return self._url_head + path + self._url_tail + outer.hexdigest()


__all__ = [
    "ALGORITHM",
    "MAX_EXPIRES_SECONDS",
    "UNSIGNED_PAYLOAD",
    "BatchPresigner",
    "PresignParams",
    "PresignTarget",
    "SigningIdentity",
    "SigningKeyCache",
    "amz_date",
    "canonical_request",
    "derive_signing_key",
    "signature",
    "string_to_sign",
]
