"""The GCS kinds: GCS_SERVICE_ACCOUNT (a JSON key file, V4 RSA), GCS_HMAC and
GCS_IMPERSONATION (no key: the service signs as the customer's service account)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bucketvault.models import CredentialKind
from bucketvault.providers.kinds import (
    PRINTABLE_ID,
    Field,
    KindSpec,
    ParseContext,
    SecretFields,
    bad_field,
)
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI

GCS_SERVICE_ACCOUNT = CredentialKind("GCS_SERVICE_ACCOUNT")
GCS_HMAC = CredentialKind("GCS_HMAC")
GCS_IMPERSONATION = CredentialKind("GCS_IMPERSONATION")

MIN_RSA_BITS = 2048
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# A Google service account: the address goes into IAM Credentials URL paths, so only
# the characters Google allows in account ids and project domains get through.
SERVICE_ACCOUNT_EMAIL = re.compile(
    r"^[a-z0-9][a-z0-9-]{0,62}@[a-z0-9][a-z0-9.-]{0,250}\.gserviceaccount\.com$"
)


@dataclass(frozen=True)
class ServiceAccountSecret:
    """A parsed service-account key: the private key is loaded once, here."""

    client_email: str
    project_id: str
    private_key_id: str
    token_uri: str
    private_key: RSAPrivateKey = field(repr=False)
    # The JSON document as google-auth wants it to mint tokens.
    info: Mapping[str, Any] = field(repr=False)

    def metadata(self) -> Mapping[str, str]:
        """Who signs, and with which key."""
        return {
            "client_email": self.client_email,
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "token_uri": self.token_uri,
            "rsa_key_bits": str(self.private_key.key_size),
        }


@dataclass(frozen=True)
class HmacSecret:
    """A GCS HMAC key (interoperability access id and secret)."""

    access_id: str
    secret: str = field(repr=False)

    def metadata(self) -> Mapping[str, str]:
        """The access id."""
        return {"access_id": self.access_id}


@dataclass(frozen=True)
class ImpersonationSecret:
    """The customer's service account the service impersonates; nothing in it is secret."""

    service_account: str

    def metadata(self) -> Mapping[str, str]:
        """The impersonated account."""
        return {"service_account": self.service_account}


def parse_service_account(f: SecretFields, context: ParseContext) -> ServiceAccountSecret:
    """Check the key file and load its RSA private key; the token_uri must be allowed."""
    if f["type"] != "service_account":
        raise bad_field("type", "must be 'service_account'")
    try:
        key = load_pem_private_key(f["private_key"].encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The parser's message could quote the input: never pass it on. A damaged key
        # can name an algorithm OID the backend does not know (UnsupportedAlgorithm).
        raise bad_field("private_key", "is not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise bad_field("private_key", f"must be an RSA key of at least {MIN_RSA_BITS} bits")
    # Checked at every open too, not only at registration: the allow-list may have shrunk.
    token_uri = context.url_policy.check_token_uri(
        f["token_uri"] or GOOGLE_TOKEN_URI, field="secret.token_uri"
    )
    return ServiceAccountSecret(
        client_email=f["client_email"],
        project_id=f["project_id"],
        private_key_id=f["private_key_id"],
        token_uri=token_uri,
        private_key=key,
        info={**f.document, "token_uri": token_uri},
    )


def parse_hmac(f: SecretFields, context: ParseContext) -> HmacSecret:
    """An HMAC key: both fields are checked by their declarations."""
    return HmacSecret(f["access_id"], f["secret"])


def parse_impersonation(f: SecretFields, context: ParseContext) -> ImpersonationSecret:
    """The account's address, checked by its declaration."""
    return ImpersonationSecret(f["service_account"])


KINDS: Mapping[CredentialKind, KindSpec] = {
    GCS_SERVICE_ACCOUNT: KindSpec(
        GCS_SERVICE_ACCOUNT,
        "A service-account JSON key file, as Google issues it (other fields are kept)",
        (
            Field("type", "must be service_account", max_len=64),
            Field("client_email", "the service account's email", max_len=320, pattern=_EMAIL),
            Field("private_key", "the PEM RSA private key", secret=True, max_len=16384),
            Field("private_key_id", "the key's id", required=False, max_len=128),
            Field("project_id", "the project", required=False, max_len=128),
            Field("token_uri", "the OAuth token endpoint (Google's)", required=False, max_len=2048),
        ),
        parse_service_account,
        extra_fields=True,
    ),
    GCS_HMAC: KindSpec(
        GCS_HMAC,
        "A GCS HMAC key (V4 HMAC signing, XML API listing)",
        (
            Field("access_id", "the HMAC access id", pattern=PRINTABLE_ID),
            Field("secret", "the HMAC secret", secret=True, max_len=256),
        ),
        parse_hmac,
    ),
    GCS_IMPERSONATION: KindSpec(
        GCS_IMPERSONATION,
        "A service account the service impersonates (IAM Credentials signBlob): no key",
        (
            Field(
                "service_account",
                "the customer's service account email; grant the service's identity "
                "roles/iam.serviceAccountTokenCreator on it (GetOnboarding)",
                max_len=320,
                pattern=SERVICE_ACCOUNT_EMAIL,
            ),
        ),
        parse_impersonation,
    ),
}

__all__ = [
    "GCS_HMAC",
    "GCS_IMPERSONATION",
    "GCS_SERVICE_ACCOUNT",
    "KINDS",
    "SERVICE_ACCOUNT_EMAIL",
    "HmacSecret",
    "ImpersonationSecret",
    "ServiceAccountSecret",
    "parse_hmac",
    "parse_impersonation",
    "parse_service_account",
]
