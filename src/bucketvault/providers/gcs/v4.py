"""GCS V4 query-string signing (GOOG4-RSA-SHA256 and GOOG4-HMAC-SHA256), staged.

canonical request -> string to sign -> signature -> URL. The stages are the shared
stage objects of ``providers.signing``; the plain functions here are one-line calls of
them. A batch of keys shares everything but the object path (time, scope, query,
headers), so ``V4Batch`` builds the same objects once and ``V4Batch.url`` only applies
them to each key's path.
Byte-for-byte equal to google-cloud-storage's ``generate_signed_url(version="v4")``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bucketvault.errors import InvalidArgument
from bucketvault.models import NO_OVERRIDES, Method, Overrides
from bucketvault.providers import signing
from bucketvault.providers.signing import UNSIGNED_PAYLOAD, canonical_headers, encode_path

RSA_ALGORITHM = "GOOG4-RSA-SHA256"
HMAC_ALGORITHM = "GOOG4-HMAC-SHA256"
# google-cloud-storage always signs for location "auto"; GCS accepts it for every bucket.
LOCATION = "auto"
MAX_EXPIRES = 604800
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
        # (datestamp, HMAC under that day's key): reused by every URL signed that day.
        self._derived: tuple[str, signing.HmacSha256 | None] = ("", None)

    def __repr__(self) -> str:
        return f"HmacKeySigner(signer_id={self.signer_id!r})"

    def signing_key(self, datestamp: str) -> bytes:
        """The derived key for one day, as Google's V4 HMAC description builds it."""
        return signing.derive_key(
            b"GOOG4" + self._secret, (datestamp, LOCATION, "storage", "goog4_request")
        )

    def sign(self, datestamp: str, string_to_sign: str) -> str:
        """HMAC-SHA256 with the day's derived key, hex."""
        day, mac = self._derived
        if day != datestamp or mac is None:
            mac = signing.HmacSha256(self.signing_key(datestamp))
            with self._lock:
                self._derived = (datestamp, mac)
        return mac.hexdigest(string_to_sign)

    def forget(self) -> None:
        """Drop the secret and derived key (handle closed)."""
        with self._lock:
            self._secret = b""
            self._derived = ("", None)


def canonical_request(
    method: str, path: str, query: str, header_block: str, signed_headers: str
) -> str:
    """Stage 1: the canonical request (the header block already ends with a newline)."""
    return signing.CanonicalRequest(method, query, header_block, signed_headers).render(path)


def string_to_sign(algorithm: str, timestamp: str, scope: str, request: str) -> str:
    """Stage 2: what the key signs."""
    return signing.StringToSign(algorithm, timestamp, scope).render(request)


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
    overrides: Overrides = NO_OVERRIDES


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
        signed_at = options.signed_at.replace(microsecond=0)
        self.timestamp = signed_at.strftime("%Y%m%dT%H%M%SZ")
        self.datestamp = self.timestamp[:8]
        self.expires_at = signed_at + timedelta(seconds=options.expires_in)
        self.scope = f"{self.datestamp}/{LOCATION}/storage/goog4_request"

        headers = [("host", urlsplit(endpoint).netloc)]
        self.required_headers: dict[str, str] = {}
        wanted = options.overrides
        if options.method is Method.PUT and wanted.content_type:
            content_type = normalise_header_value(wanted.content_type, field="content_type")
            headers.append(("content-type", content_type))
            self.required_headers["Content-Type"] = content_type
        header_block, signed_headers = canonical_headers(headers)

        params = [
            ("X-Goog-Algorithm", signer.algorithm),
            ("X-Goog-Credential", f"{signer.signer_id}/{self.scope}"),
            ("X-Goog-Date", self.timestamp),
            ("X-Goog-Expires", str(options.expires_in)),
            ("X-Goog-SignedHeaders", signed_headers),
        ]
        if wanted.response_content_type:
            params.append(("response-content-type", wanted.response_content_type))
        if wanted.response_content_disposition:
            params.append(("response-content-disposition", wanted.response_content_disposition))
        query = signing.canonical_query(params)
        self._bucket_path = f"/{bucket}/"
        # Stages 1 and 2 with everything but the key's path fixed; the same objects the
        # stage functions above build.
        self.canonical = signing.CanonicalRequest(
            options.method.value, query, header_block, signed_headers, path_prefix=self._bucket_path
        )
        self.to_sign = signing.StringToSign(signer.algorithm, self.timestamp, self.scope)
        self._url_head = endpoint + self._bucket_path
        self._url_tail = "?" + query + "&X-Goog-Signature="

    @property
    def parallel(self) -> bool:
        """Whether spreading this batch over threads adds throughput."""
        return self._signer.parallel

    def path(self, key: str) -> str:
        """The canonical resource of one key: path-style, encoded exactly once."""
        return self._bucket_path + encode_path(key)

    def url(self, key: str) -> str:
        """Stages 1-3 for one key, then the URL with the signature last."""
        path = encode_path(key)
        to_sign = self.to_sign.render(self.canonical.render(path))
        signature = self._signer.sign(self.datestamp, to_sign)
        return f"{self._url_head}{path}{self._url_tail}{signature}"


__all__ = [
    "DEFAULT_ENDPOINT",
    "HMAC_ALGORITHM",
    "LOCATION",
    "MAX_EXPIRES",
    "RSA_ALGORITHM",
    "UNSIGNED_PAYLOAD",
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
