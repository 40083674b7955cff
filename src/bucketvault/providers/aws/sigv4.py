"""SigV4 query-string presigning for S3, staged and built for batches.

The stages (canonical request -> string to sign -> signature) are the shared stage
objects of ``providers.signing``; the plain functions here, which the published-vector
tests check, are one-line calls of them. ``BatchPresigner`` is the hot path: it builds
the same objects once per batch from everything that does not depend on the object key
(canonical query, headers, scope, signing key, the URL's query string), so each key
costs one SHA-256 and one HMAC with pre-hashed pads.
Output is byte-identical to botocore's ``generate_presigned_url`` (the differential
tests pin it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bucketvault.providers import signing
from bucketvault.providers.signing import UNSIGNED_PAYLOAD, encode_path, encode_value

ALGORITHM = "AWS4-HMAC-SHA256"
# SigV4 query auth refuses anything longer than seven days.
MAX_EXPIRES_SECONDS = 604800


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
    return signing.derive_key(
        ("AWS4" + secret).encode("utf-8"), (date, region, service, "aws4_request")
    )


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str = UNSIGNED_PAYLOAD,
) -> str:
    """Stage 1: method, encoded path, canonical query, headers, signed headers, payload."""
    header_block, signed_headers = signing.canonical_headers(headers.items())
    stage = signing.CanonicalRequest(
        method, query, header_block, signed_headers, payload_hash=payload_hash
    )
    return stage.render(path)


def string_to_sign(timestamp: str, scope: str, request: str) -> str:
    """Stage 2: algorithm, timestamp, scope and the hash of the canonical request."""
    return signing.StringToSign(ALGORITHM, timestamp, scope).render(request)


def signature(signing_key: bytes, to_sign: str) -> str:
    """Stage 3: hex HMAC-SHA256 of the string to sign."""
    return signing.HmacSha256(signing_key).hexdigest(to_sign)


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
    """Presigns many keys that share a target, identity and parameters.

    ``canonical``, ``to_sign`` and ``mac`` are the batch's three stages, the same
    objects the stage functions above build; ``url`` only chains them per key.
    """

    __slots__ = ("_url_head", "_url_tail", "canonical", "mac", "to_sign")

    def __init__(
        self,
        target: PresignTarget,
        identity: SigningIdentity,
        params: PresignParams,
        signing_key: bytes,
    ) -> None:
        timestamp = amz_date(params.signed_at)
        scope = f"{timestamp[:8]}/{target.region}/s3/aws4_request"
        # A caller's Host header replaces ours rather than joining it.
        headers = {"host": target.host}
        headers.update({name.lower(): value for name, value in params.headers.items()})
        header_block, signed_headers = signing.canonical_headers(headers.items())
        auth = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{identity.access_key_id}/{scope}"),
            ("X-Amz-Date", timestamp),
            ("X-Amz-Expires", str(params.expires_in)),
            ("X-Amz-SignedHeaders", signed_headers),
        ]
        if identity.session_token:
            auth.append(("X-Amz-Security-Token", identity.session_token))
        query = signing.canonical_query((*params.query, *auth))
        self.canonical = signing.CanonicalRequest(
            params.method, query, header_block, signed_headers, path_prefix=target.path_prefix
        )
        self.to_sign = signing.StringToSign(ALGORITHM, timestamp, scope)
        self.mac = signing.HmacSha256(signing_key)
        # botocore puts operation parameters first, then auth parameters, signature last.
        url_query = "&".join(
            f"{encode_value(k)}={encode_value(v)}" for k, v in (*params.query, *auth)
        )
        self._url_head = target.origin + target.path_prefix
        self._url_tail = "?" + url_query + "&X-Amz-Signature="

    def url(self, key: str) -> str:
        """The presigned URL for one object key."""
        path = encode_path(key)
        to_sign = self.to_sign.render(self.canonical.render(path))
        return f"{self._url_head}{path}{self._url_tail}{self.mac.hexdigest(to_sign)}"


class PresignerCache:
    """Presigners by everything but the key; thread-safe and bounded.

    A presigner's canonical query, scope and URL tail are the same for every key signed
    with one identity, target and parameters, and stable URLs floor the signing time to
    a window, so fresh keys of one mount share them until the window moves. Building
    them (twenty percent-encodings and a sort) cost more than signing the key itself."""

    _LIMIT = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._presigners: dict[tuple[object, ...], BatchPresigner] = {}

    def get(
        self,
        target: PresignTarget,
        identity: SigningIdentity,
        params: PresignParams,
        signing_key: bytes,
    ) -> BatchPresigner:
        """The presigner for these inputs, built at most once while it is cached."""
        # The identity and derived key are part of the slot, never of any output: a
        # rotated session or a new day builds a new presigner.
        slot = (
            target,
            identity,
            signing_key,
            params.method,
            params.expires_in,
            params.signed_at,
            tuple(params.query),
            tuple(params.headers.items()),
        )
        presigner = self._presigners.get(slot)
        if presigner is None:
            presigner = BatchPresigner(target, identity, params, signing_key)
            with self._lock:
                if len(self._presigners) >= self._LIMIT:
                    # Old windows are never asked for again.
                    self._presigners.clear()
                self._presigners[slot] = presigner
        return presigner

    def clear(self) -> None:
        """Forget every presigner."""
        with self._lock:
            self._presigners.clear()


__all__ = [
    "ALGORITHM",
    "MAX_EXPIRES_SECONDS",
    "UNSIGNED_PAYLOAD",
    "BatchPresigner",
    "PresignParams",
    "PresignTarget",
    "PresignerCache",
    "SigningIdentity",
    "SigningKeyCache",
    "amz_date",
    "canonical_request",
    "derive_signing_key",
    "signature",
    "string_to_sign",
]
