"""An independent verifier of GCS V4 signed URLs, for tests only.

Written from Google's description of V4 signing ("Signature V4 signing process"), sharing
no code with bucketvault's signer: it parses the URL back, rebuilds the canonical
request (verb, path, sorted percent-encoded query without X-Goog-Signature, canonical
headers, signed headers, UNSIGNED-PAYLOAD), the string to sign (algorithm, active
datetime, credential scope, SHA-256 of the canonical request), and checks the
signature with the service account's public key or the HMAC secret. It also checks
the scope, the signer, the expiry window and that the URL is canonically encoded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = "0123456789ABCDEF"
SEVEN_DAYS = 7 * 24 * 3600


class Rejected(Exception):
    """The URL does not carry a valid V4 signature; args[0] says why."""


@dataclass(frozen=True)
class Verified:
    bucket: str
    object_name: str
    expires_at: datetime
    algorithm: str


def _pct(text: str, *, keep_slash: bool) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append("%" + _HEX[byte >> 4] + _HEX[byte & 15])
    return "".join(out)


def _unpct(text: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise Rejected("bad percent-escape")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.extend(ch.encode("utf-8"))
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("escape is not UTF-8") from exc


def _split_url(url: str) -> tuple[str, str, str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise Rejected("not an http(s) URL")
    authority, slash, path_query = rest.partition("/")
    if not slash:
        raise Rejected("no path")
    path, _, query = ("/" + path_query).partition("?")
    if "#" in query:
        raise Rejected("fragment")
    return scheme, authority, path, query


def _derived_hmac_key(secret: str, datestamp: str, location: str) -> bytes:
    key = ("GOOG4" + secret).encode("utf-8")
    for part in (datestamp, location, "storage", "goog4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def verify(
    url: str,
    *,
    method: str,
    now: datetime,
    signer: str,
    public_key: RSAPublicKey | None = None,
    hmac_secret: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Verified:
    """Return what the URL grants if its V4 signature is valid for this request, else raise."""
    _, authority, path, query = _split_url(url)

    params: dict[str, str] = {}
    for part in query.split("&") if query else []:
        name, eq, value = part.partition("=")
        if not eq:
            raise Rejected("query parameter without '='")
        name, value = _unpct(name), _unpct(value)
        if name in params:
            raise Rejected(f"duplicate query parameter {name}")
        params[name] = value
    for required in (
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
        "X-Goog-Signature",
    ):
        if required not in params:
            raise Rejected(f"missing {required}")

    algorithm = params["X-Goog-Algorithm"]
    if algorithm == "GOOG4-RSA-SHA256":
        if public_key is None:
            raise Rejected("RSA-signed URL but no public key expected")
    elif algorithm == "GOOG4-HMAC-SHA256":
        if hmac_secret is None:
            raise Rejected("HMAC-signed URL but no HMAC secret expected")
    else:
        raise Rejected(f"unknown algorithm {algorithm}")

    # X-Goog-Credential = <signer>/<date>/<location>/storage/goog4_request
    credential = params["X-Goog-Credential"]
    pieces = credential.split("/")
    if len(pieces) != 5 or pieces[3] != "storage" or pieces[4] != "goog4_request":
        raise Rejected("malformed credential scope")
    who, datestamp, location = pieces[0], pieces[1], pieces[2]
    if who != signer:
        raise Rejected("signed by someone else")
    active = params["X-Goog-Date"]
    try:
        signed_at = datetime.strptime(active, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise Rejected("bad X-Goog-Date") from exc
    if active[:8] != datestamp:
        raise Rejected("scope date differs from X-Goog-Date")
    expires_text = params["X-Goog-Expires"]
    if not expires_text.isdigit():
        raise Rejected("bad X-Goog-Expires")
    expires = int(expires_text)
    if not 1 <= expires <= SEVEN_DAYS:
        raise Rejected("X-Goog-Expires out of range")
    expires_at = signed_at + timedelta(seconds=expires)
    if now < signed_at:
        raise Rejected("not yet valid")
    if now >= expires_at:
        raise Rejected("expired")

    # The path must already be in canonical form: what we sign is what a server sees.
    decoded_path = _unpct(path)
    canonical_path = _pct(decoded_path, keep_slash=True)
    if canonical_path != path:
        raise Rejected("path is not canonically encoded")
    bucket, slash, object_name = decoded_path[1:].partition("/")
    if not slash or not bucket or not object_name:
        raise Rejected("not a path-style object URL")

    sent = {"host": authority}
    for name, value in (headers or {}).items():
        sent[name.strip().lower()] = " ".join(value.split())
    signed_names = params["X-Goog-SignedHeaders"].split(";")
    if "host" not in signed_names or signed_names != sorted(signed_names):
        raise Rejected("signed headers must be sorted and include host")
    missing = [n for n in signed_names if n not in sent]
    if missing:
        raise Rejected(f"signed header not sent: {missing}")
    header_lines = "".join(f"{n}:{sent[n]}\n" for n in signed_names)

    canonical_query = "&".join(
        sorted(
            f"{_pct(k, keep_slash=False)}={_pct(v, keep_slash=False)}"
            for k, v in params.items()
            if k != "X-Goog-Signature"
        )
    )
    canonical_request = "\n".join(
        [
            method,
            canonical_path,
            canonical_query,
            header_lines,
            params["X-Goog-SignedHeaders"],
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = "\n".join(
        [
            algorithm,
            active,
            f"{datestamp}/{location}/storage/goog4_request",
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    ).encode("utf-8")

    signature_hex = params["X-Goog-Signature"]
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError as exc:
        raise Rejected("signature is not hex") from exc
    if public_key is not None and algorithm == "GOOG4-RSA-SHA256":
        try:
            public_key.verify(signature, to_sign, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise Rejected("bad RSA signature") from exc
    else:
        assert hmac_secret is not None
        expected = hmac.new(
            _derived_hmac_key(hmac_secret, datestamp, location), to_sign, hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, signature):
            raise Rejected("bad HMAC signature")
    return Verified(
        bucket=bucket, object_name=object_name, expires_at=expires_at, algorithm=algorithm
    )


__all__ = ["Rejected", "Verified", "verify"]
