"""Constants and helpers shared by the Azure tests (imported as azure.azurite_support)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient

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


def unique(prefix: str = "c") -> str:
    """A fresh container name (3-63 lowercase letters, digits, dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(tenant: str, *, lifetime: int = 3600) -> str:
    """An unsigned-in-spirit JWT: Azurite checks iss/aud/nbf/exp/iat, not the signature."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "aud": "https://storage.azure.com",
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": SP_OBJECT_ID,
        "tid": tenant,
        "appid": CLIENT_ID,
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
