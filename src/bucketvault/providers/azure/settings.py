"""Azure provider settings, read once from the env mapping the composition root passes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bucketvault.config import env_bool, env_int
from bucketvault.errors import InvalidArgument
from bucketvault.providers.egress import Egress
from bucketvault.urlpolicy import UrlPolicy

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
# Azure refuses a user delegation key whose expiry is more than 7 days away; stay under it
# so that a clock a little ahead of Azure's is not refused.
MAX_DELEGATION_KEY_LIFETIME = 7 * 24 * 3600 - 3600
# The longest URL we sign, whatever the mount allows: a SAS is a bearer token.
MAX_SAS_LIFETIME = 7 * 24 * 3600


_CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_APP = "BUCKETVAULT_AZURE_APP_"


def _config_error(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_CONFIG")


def _read_certificate(path: str) -> bytes:
    """A PEM file with the app's certificate and its unencrypted private key, checked now
    so that a bad file stops start-up instead of failing the first customer's call."""
    name = f"{_APP}CERTIFICATE_FILE"
    try:
        pem = Path(path).read_bytes()
    except OSError:
        raise _config_error(f"{name} cannot be read") from None
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # No detail: a parser's message could quote the key file.
        raise _config_error(
            f"{name} must hold a PEM certificate and its unencrypted private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        # Entra's client assertions are RS256: azure-identity refuses any other key.
        raise _config_error(f"{name} must hold an RSA key")
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, raw) != (
        certificate.public_key().public_bytes(serialization.Encoding.DER, raw)
    ):
        raise _config_error(f"{name}: the private key does not match the certificate")
    return pem


@dataclass(frozen=True)
class EntraApp:
    """The service's own multi-tenant Entra application (AZURE_DELEGATED).

    Exactly one of a client secret or a certificate (PEM, certificate and key) proves it;
    either is read once at start-up and never shown.
    """

    client_id: str
    client_secret: str = field(default="", repr=False)
    certificate_pem: bytes = field(default=b"", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EntraApp | None:
        """BUCKETVAULT_AZURE_APP_*; None when no app is configured."""
        client_id = env.get(f"{_APP}CLIENT_ID", "").strip()
        secret = env.get(f"{_APP}CLIENT_SECRET", "")
        certificate = env.get(f"{_APP}CERTIFICATE_FILE", "").strip()
        if not client_id:
            if secret or certificate:
                raise _config_error(f"{_APP}CLIENT_ID is required with a secret or certificate")
            return None
        if not _CLIENT_ID.match(client_id):
            raise _config_error(f"{_APP}CLIENT_ID is not an application (client) id")
        if bool(secret) == bool(certificate):
            raise _config_error(f"set exactly one of {_APP}CLIENT_SECRET or {_APP}CERTIFICATE_FILE")
        if certificate:
            return cls(client_id, certificate_pem=_read_certificate(certificate))
        return cls(client_id, client_secret=secret)


@dataclass(frozen=True)
class AzureConfig:
    """Everything the provider reads from the environment."""

    authority_host: str = DEFAULT_AUTHORITY
    # PEM bundle to trust for the token endpoint and storage accounts (self-signed in tests).
    ca_bundle: str = ""
    delegation_key_lifetime: int = MAX_DELEGATION_KEY_LIFETIME
    # Refresh the delegation key this long before it expires (advisory: old key still serves).
    delegation_key_refresh_ahead: int = 24 * 3600
    # Below this much life left, callers wait for a fresh key (mandatory refresh).
    delegation_key_min_remaining: int = 300
    sas_expiry_warning_days: int = 14
    retry_total: int = 2
    timeout_seconds: int = 20
    # The service's own app (AZURE_DELEGATED); None: that kind is refused.
    app: EntraApp | None = None
    # Every pipeline's connections pass it (bucketvault.providers.egress); build() sets
    # the service's own, from_env one with the same BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS.
    url_policy: UrlPolicy = field(default_factory=UrlPolicy, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AzureConfig:
        """Parse BUCKETVAULT_AZURE_* settings; fail fast on a bad value."""
        lifetime = env_int(
            env,
            "BUCKETVAULT_AZURE_DELEGATION_KEY_LIFETIME",
            MAX_DELEGATION_KEY_LIFETIME,
            600,
            MAX_DELEGATION_KEY_LIFETIME,
        )
        authority = env.get("BUCKETVAULT_AZURE_AUTHORITY_HOST", "") or DEFAULT_AUTHORITY
        if not authority.startswith("https://"):
            # azure-identity refuses a plain-http authority on first use; refuse it at start-up.
            raise InvalidArgument(
                "BUCKETVAULT_AZURE_AUTHORITY_HOST must be an https URL", reason="INVALID_CONFIG"
            )
        return cls(
            authority_host=authority,
            ca_bundle=env.get("BUCKETVAULT_AZURE_CA_BUNDLE", ""),
            delegation_key_lifetime=lifetime,
            delegation_key_refresh_ahead=env_int(
                env, "BUCKETVAULT_AZURE_DELEGATION_KEY_REFRESH_AHEAD", 24 * 3600, 0, lifetime
            ),
            retry_total=env_int(env, "BUCKETVAULT_AZURE_RETRY_TOTAL", 2, 0, 10),
            timeout_seconds=env_int(env, "BUCKETVAULT_AZURE_TIMEOUT_SECONDS", 20, 1, 300),
            app=EntraApp.from_env(env),
            url_policy=UrlPolicy(
                allow_insecure=env_bool(env, "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS")
            ),
        )

    def transport_options(self) -> dict[str, Any]:
        """Keyword arguments for azure-core pipelines (TLS trust, retries, timeouts)."""
        return {
            "connection_verify": self.ca_bundle or True,
            "retry_total": self.retry_total,
            # azure-storage-blob's ExponentialRetry waits 15 s (+/- 3 s) before its first
            # retry: one throttled or dropped listing cost 15-40 s. About 1 s, then 3 s,
            # each with +/- 1 s of jitter, keeps retries bounded and callers' deadlines met.
            "initial_backoff": 1,
            "increment_base": 2,
            "random_jitter_range": 1,
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
            # The transport owns a guarded session; RedirectPolicy would follow a 3xx
            # anywhere (azure-core strips auth headers, but the request still goes).
            "transport": self.transport(),
            "permit_redirects": False,
        }

    def transport(self) -> Any:
        """A fresh azure-core transport behind the egress guard (closed with its client)."""
        return Egress(self.url_policy).azure_transport(
            connection_verify=self.ca_bundle or True,
            connection_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
        )


__all__ = [
    "DEFAULT_AUTHORITY",
    "MAX_DELEGATION_KEY_LIFETIME",
    "MAX_SAS_LIFETIME",
    "AzureConfig",
    "EntraApp",
]
