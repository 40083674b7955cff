"""Validation of GCS credential documents; errors name fields, never their values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bucketvault.errors import InvalidArgument

MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class ServiceAccountKey:
    """A parsed service-account key: the private key is loaded once, here."""

    client_email: str
    project_id: str
    private_key_id: str
    token_uri: str
    private_key: RSAPrivateKey = field(repr=False)
    # The JSON document as google-auth wants it to mint tokens.
    info: Mapping[str, Any] = field(repr=False)


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def parse_service_account(fields: Mapping[str, Any]) -> ServiceAccountKey:
    """Check a service-account JSON key and load its RSA private key."""
    if _text(fields, "type") not in ("", "service_account"):
        raise InvalidArgument(
            "the key is not a service-account key (type must be service_account)",
            reason="INVALID_SERVICE_ACCOUNT_KEY",
            field="type",
        )
    client_email = _text(fields, "client_email")
    if not client_email or "@" not in client_email:
        raise InvalidArgument(
            "the key has no valid client_email",
            reason="INVALID_SERVICE_ACCOUNT_KEY",
            field="client_email",
        )
    token_uri = _text(fields, "token_uri")
    if not token_uri:
        raise InvalidArgument(
            "the key has no token_uri", reason="INVALID_SERVICE_ACCOUNT_KEY", field="token_uri"
        )
    pem = _text(fields, "private_key")
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        # The parser's message could quote the input: never pass it on.
        raise InvalidArgument(
            "the key's private_key is not a PEM private key",
            reason="INVALID_SERVICE_ACCOUNT_KEY",
            field="private_key",
        ) from exc
    if not isinstance(key, RSAPrivateKey):
        raise InvalidArgument(
            "the key's private_key is not an RSA key",
            reason="INVALID_SERVICE_ACCOUNT_KEY",
            field="private_key",
        )
    if key.key_size < MIN_RSA_BITS:
        raise InvalidArgument(
            f"the key's RSA key is shorter than {MIN_RSA_BITS} bits",
            reason="INVALID_SERVICE_ACCOUNT_KEY",
            field="private_key",
        )
    return ServiceAccountKey(
        client_email=client_email,
        project_id=_text(fields, "project_id"),
        private_key_id=_text(fields, "private_key_id"),
        token_uri=token_uri,
        private_key=key,
        info=dict(fields),
    )


@dataclass(frozen=True)
class HmacKey:
    access_id: str
    secret: str = field(repr=False)


def parse_hmac(fields: Mapping[str, Any]) -> HmacKey:
    """Check a GCS HMAC key document."""
    access_id = _text(fields, "access_id")
    secret = _text(fields, "secret")
    if not access_id or any(not (0x21 <= ord(c) < 0x7F) for c in access_id):
        raise InvalidArgument(
            "access_id must be a non-empty printable ASCII string",
            reason="INVALID_HMAC_KEY",
            field="access_id",
        )
    if not secret:
        raise InvalidArgument("secret is empty", reason="INVALID_HMAC_KEY", field="secret")
    return HmacKey(access_id=access_id, secret=secret)


__all__ = ["HmacKey", "ServiceAccountKey", "parse_hmac", "parse_service_account"]
