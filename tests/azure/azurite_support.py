"""Constants and helpers shared by the Azure tests (imported as azure.azurite_support)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bucketvault.clock import Clock, SystemClock
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
    RegistrationContext,
)
from bucketvault.providers.azure import AzureProvider, build
from bucketvault.testing.providers import RawSecret, Ruled, UrlRequest
from bucketvault.testing.tls import TlsFiles
from bucketvault.urlpolicy import UrlPolicy

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0d5f3b1a-1111-2222-3333-444455556666"
CLIENT_SECRET = "local-test-client-secret"  # the local token endpoint checks it
SP_OBJECT_ID = "a1b2c3d4-0000-1111-2222-333344445555"
# The service's own multi-tenant app (AZURE_DELEGATED) and the customer tenants the local
# token endpoint plays: consented, not consented (AADSTS700016), consented but holding
# no role on the account (its tokens are refused by Azurite, see conftest).
APP_CLIENT_ID = "5e1f0a9b-aaaa-bbbb-cccc-ddddeeeeffff"
APP_CLIENT_SECRET = "local-test-app-secret-do-not-leak"  # the local token endpoint checks it
APP_OBJECT_ID = "b2c3d4e5-0000-1111-2222-333344445555"
UNCONSENTED_TENANT = "0b7e0e0e-1111-2222-3333-000000000001"
ROLELESS_TENANT = "0b7e0e0e-1111-2222-3333-000000000002"


@dataclass(frozen=True)
class Azurite:
    account_url: str
    port: int


# Azurite's HTTPS certificate, also the token endpoint's (bucketvault.testing.tls makes it).
Tls = TlsFiles


@dataclass(frozen=True)
class TokenEndpoint:
    authority: str  # https://127.0.0.1:PORT
    requests: list[dict[str, str]]


@dataclass(frozen=True)
class AppCertificate:
    """The service app's certificate: one PEM file with certificate and RSA key."""

    pem_file: Path
    public_key: rsa.RSAPublicKey


def app_certificate(directory: Path) -> AppCertificate:
    """Make the app's certificate at test time (never committed)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bucketvault-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / "app.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return AppCertificate(path, key.public_key())


def unique(prefix: str = "c") -> str:
    """A fresh container name (3-63 lowercase letters, digits, dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(
    tenant: str,
    *,
    lifetime: int = 3600,
    appid: str = CLIENT_ID,
    oid: str = SP_OBJECT_ID,
    audience: str = "https://storage.azure.com",
) -> str:
    """An unsigned-in-spirit JWT: Azurite checks iss/aud/nbf/exp/iat, not the signature."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": oid,
        "tid": tenant,
        "appid": appid,
    }
    return ".".join(
        [
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(claims).encode()),
            _b64url(b"not-a-signature"),
        ]
    )


def make_mount(
    bucket: str,
    *,
    prefix: str = "",
    endpoint: str = "",
    max_ttl: int = 3600,
    allow_credential_lifetime: bool = False,
) -> Mount:
    """A mount record as the core would pass it."""
    now = dt.datetime.now(dt.UTC)
    return Mount(
        mount_id=f"m-{uuid.uuid4().hex[:8]}",
        tenant="acme",
        name="m",
        bucket=bucket,
        prefix=prefix,
        region="",
        endpoint=endpoint,
        credential_id="cred",
        policy=MountPolicy(
            max_ttl, frozenset({Method.GET, Method.HEAD, Method.PUT}), allow_credential_lifetime
        ),
        version=1,
        created_at=now,
        updated_at=now,
    )


def make_credential(kind: CredentialKind, metadata: dict[str, str] | None = None) -> Credential:
    """A credential record as the core would pass it."""
    return Credential(
        credential_id="cred",
        tenant="acme",
        display_name="x",
        kind=kind,
        state=CredentialState.ACTIVE,
        fingerprint="fp",
        metadata=metadata or {},
        warnings=(),
        created_at=dt.datetime.now(dt.UTC),
        created_by="test",
    )


def context(kind: CredentialKind) -> RegistrationContext:
    return RegistrationContext("acme", "cred", kind)


def provider(env: dict[str, str] | None = None, clock: Clock | None = None) -> Ruled:
    """The provider as the composition root builds it (tests relax the URL policy)."""
    clock = clock or SystemClock()
    built = build(env or {}, clock, UrlPolicy(allow_insecure=True))
    assert isinstance(built, AzureProvider)
    return Ruled(built, clock)


def shared_key_secret(account_url: str) -> RawSecret:
    return RawSecret(
        CredentialKind("AZURE_SHARED_KEY"),
        {"account_url": account_url, "account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
    )


def sas_secret(account_url: str, token: str) -> RawSecret:
    return RawSecret(CredentialKind("AZURE_SAS"), {"account_url": account_url, "sas_token": token})


def sp_secret(account_url: str, secret: str = CLIENT_SECRET) -> RawSecret:
    return RawSecret(
        CredentialKind("AZURE_SERVICE_PRINCIPAL"),
        {
            "account_url": account_url,
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "client_secret": secret,
        },
    )


def delegated_env(token_endpoint: TokenEndpoint, tls: Tls, **app: str) -> dict[str, str]:
    """Server settings for AZURE_DELEGATED: the authority stand-in and the service's app
    (its client secret unless app names BUCKETVAULT_AZURE_APP_* values instead)."""
    return {
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": token_endpoint.authority,
        "BUCKETVAULT_AZURE_CA_BUNDLE": str(tls.cert),
        "BUCKETVAULT_AZURE_APP_CLIENT_ID": APP_CLIENT_ID,
        **(app or {"BUCKETVAULT_AZURE_APP_CLIENT_SECRET": APP_CLIENT_SECRET}),
    }


def delegated_secret(account_url: str, tenant_id: str = TENANT_ID) -> RawSecret:
    return RawSecret(
        CredentialKind("AZURE_DELEGATED"), {"account_url": account_url, "tenant_id": tenant_id}
    )


def sdk_service(account_url: str, **kwargs: Any) -> BlobServiceClient:
    """An SDK client with the account key, for test setup and independent checks."""
    return BlobServiceClient(
        account_url, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}, **kwargs
    )


def options(method: Method = Method.GET, ttl: int = 600, **kwargs: str) -> UrlRequest:
    return UrlRequest(method=method, expires_in=ttl, **kwargs)


def tamper(url: str) -> str:
    """Flip one character of the signature, keeping it valid base64."""
    head, sig = url.rsplit("sig=", 1)
    first = "B" if sig[0] != "B" else "C"
    return f"{head}sig={first}{sig[1:]}"
