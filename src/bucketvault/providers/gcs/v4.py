"""GCS V4 query-string signing (GOOG4-RSA-SHA256 and GOOG4-HMAC-SHA256), staged.

canonical request -> string to sign -> signature -> URL, each stage a function. A batch
of keys shares everything but the object path (time, scope, query, headers), so
``V4Batch`` builds those once and ``V4Batch.url`` only does the per-key work.
Byte-for-byte equal to google-cloud-storage's ``generate_signed_url(version="v4")``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bucketvault.errors import InvalidArgument
from bucketvault.models import Method
from bucketvault.providers.signing import canonical_query, encode_path, hmac_sha256, sha256_hex

RSA_ALGORITHM = "GOOG4-RSA-SHA256"
HMAC_ALGORITHM = "GOOG4-HMAC-SHA256"
# google-cloud-storage always signs for location "auto"; GCS accepts it for every bucket.
LOCATION = "auto"
MAX_EXPIRES = 604800
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class KeySigner(Protocol):
    """Turns a string to sign into the hex signature; knows its algorithm and identity."""

    @property
    def algorithm(self) -> str:
        """GOOG4-RSA-SHA256 or GOOG4-HMAC-SHA256."""
        ...

    @property
    def signer_id(self) -> str:
        """client_email (RSA) or access id (HMAC): the first part of X-Goog-Credential."""
        ...

    @property
    def parallel(self) -> bool:
        """True when sign() spends its time outside the GIL, so threads add throughput."""
        ...

    def sign(self, datestamp: str, string_to_sign: str) -> str:
        """Hex signature of the string to sign."""
        ...


@dataclass(frozen=True)
class RsaKeySigner:
    """GOOG4-RSA-SHA256 with a service account's private key (parsed once)."""

    signer_id: str
    private_key: RSAPrivateKey = field(repr=False)
    algorithm: str = RSA_ALGORITHM
    parallel: bool = True

    def sign(self, datestamp: str, string_to_sign: str) -> str:
        """PKCS#1 v1.5 / SHA-256 signature, hex."""
        return self.private_key.sign(string_to_sign.encode("ascii"), _PKCS1V15, _SHA256).hex()


class HmacKeySigner:
    """GOOG4-HMAC-SHA256 with an HMAC key; the derived signing key is cached per day."""

    algorithm = HMAC_ALGORITHM
    parallel = False

    def __init__(self, access_id: str, secret: str) -> None:
        self.signer_id = access_id
        self._secret = secret.encode("utf-8")
        self._lock = threading.Lock()
        # (datestamp, key): one day's key is reused by every URL signed that day.
        self._derived: tuple[str, bytes] = ("", b"")

    def __repr__(self) -> str:
        return f"HmacKeySigner(signer_id={self.signer_id!r})"

    def signing_key(self, datestamp: str) -> bytes:
        """The derived key for one day, as Google's V4 HMAC description builds it."""
        cached = self._derived
        if cached[0] == datestamp:
            return cached[1]
        key = hmac_sha256(b"GOOG4" + self._secret, datestamp.encode("ascii"))
        for part in (LOCATION, "storage", "goog4_request"):
            key = hmac_sha256(key, part.encode("ascii"))
        with self._lock:
            self._derived = (datestamp, key)
        return key

    def sign(self, datestamp: str, string_to_sign: str) -> str:
        """HMAC-SHA256 with the day's derived key, hex."""
        key = self.signing_key(datestamp)
        return hmac.digest(key, string_to_sign.encode("ascii"), "sha256").hex()

    def forget(self) -> None:
        """Drop the secret and derived key (handle closed)."""
        with self._lock:
            self._secret = b""
            self._derived = ("", b"")


def canonical_headers(headers: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block with its trailing newline, signed header names)."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower().strip(), []).append(" ".join(value.split()))
    ordered = sorted((name, ",".join(values)) for name, values in merged.items())
    block = "".join(f"{name}:{value}\n" for name, value in ordered)
    return block, ";".join(name for name, _ in ordered)


def canonical_request(
    method: str, path: str, query: str, header_block: str, signed_headers: str
) -> str:
    """Stage 1: the canonical request (the header block already ends with a newline)."""
    return f"{method}\n{path}\n{query}\n{header_block}\n{signed_headers}\n{UNSIGNED_PAYLOAD}"


def string_to_sign(algorithm: str, timestamp: str, scope: str, request: str) -> str:
    """Stage 2: what the key signs."""
    return f"{algorithm}\n{timestamp}\n{scope}\n{sha256_hex(request.encode('ascii'))}"


def normalise_header_value(value: str, *, field: str) -> str:
    """A header value the client will send: printable ASCII, whitespace collapsed."""
    if any(not (0x20 <= ord(c) < 0x7F) for c in value):
        raise InvalidArgument(
            f"{field} must be printable ASCII", reason="INVALID_HEADER_VALUE", field=field
        )
    return " ".join(value.split())


@dataclass(frozen=True)
class V4Options:
    """What one batch of URLs shares."""

    method: Method
    expires_in: int
    signed_at: datetime
    response_content_type: str = ""
    response_content_disposition: str = ""
    content_type: str = ""


class V4Batch:
    """Everything one batch of URLs shares, computed once; ``url(key)`` does the rest."""

    def __init__(self, signer: KeySigner, endpoint: str, bucket: str, options: V4Options) -> None:
        if not 1 <= options.expires_in <= MAX_EXPIRES:
            raise InvalidArgument(
                f"a V4 signed URL lives between 1 and {MAX_EXPIRES} seconds",
                reason="INVALID_TTL",
                field="ttl_seconds",
            )
        self._signer = signer
        self._method = options.method.value
        signed_at = options.signed_at.replace(microsecond=0)
        self.timestamp = signed_at.strftime("%Y%m%dT%H%M%SZ")
        self.datestamp = self.timestamp[:8]
        self.expires_at = signed_at + timedelta(seconds=options.expires_in)
        self.scope = f"{self.datestamp}/{LOCATION}/storage/goog4_request"

        headers = [("host", urlsplit(endpoint).netloc)]
        self.required_headers: dict[str, str] = {}
        if options.method is Method.PUT and options.content_type:
            content_type = normalise_header_value(options.content_type, field="content_type")
            headers.append(("content-type", content_type))
            self.required_headers["Content-Type"] = content_type
        self._header_block, signed_headers = canonical_headers(headers)
        self._signed_headers = signed_headers

        params = [
            ("X-Goog-Algorithm", signer.algorithm),
            ("X-Goog-Credential", f"{signer.signer_id}/{self.scope}"),
            ("X-Goog-Date", self.timestamp),
            ("X-Goog-Expires", str(options.expires_in)),
            ("X-Goog-SignedHeaders", signed_headers),
        ]
        if options.response_content_type:
            params.append(("response-content-type", options.response_content_type))
        if options.response_content_disposition:
            params.append(("response-content-disposition", options.response_content_disposition))
        self._query = canonical_query(params)
        self._endpoint = endpoint
        self._bucket_path = f"/{bucket}/"
        # The stages run once here with the path left as a hole: per key, only the path
        # and the hash of the canonical request change. NUL cannot occur in any part.
        head, tail = canonical_request(
            self._method, "\0", self._query, self._header_block, signed_headers
        ).split("\0")
        self._request_head, self._request_tail = head, tail
        self._to_sign_head = string_to_sign(signer.algorithm, self.timestamp, self.scope, "")[:-64]

    @property
    def parallel(self) -> bool:
        """Whether spreading this batch over threads adds throughput."""
        return self._signer.parallel

    def path(self, key: str) -> str:
        """The canonical resource of one key: path-style, encoded exactly once."""
        return self._bucket_path + encode_path(key)

    def url(self, key: str) -> str:
        """Stages 1-3 for one key, then the URL with the signature last."""
        path = self._bucket_path + encode_path(key)
        request = self._request_head + path + self._request_tail
        digest = hashlib.sha256(request.encode("ascii")).hexdigest()
        signature = self._signer.sign(self.datestamp, self._to_sign_head + digest)
        return f"{self._endpoint}{path}?{self._query}&X-Goog-Signature={signature}"


__all__ = [
    "DEFAULT_ENDPOINT",
    "HMAC_ALGORITHM",
    "LOCATION",
    "MAX_EXPIRES",
    "RSA_ALGORITHM",
    "HmacKeySigner",
    "KeySigner",
    "RsaKeySigner",
    "V4Batch",
    "V4Options",
    "canonical_headers",
    "canonical_request",
    "normalise_header_value",
    "string_to_sign",
]
