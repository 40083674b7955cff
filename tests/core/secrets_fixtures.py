"""Valid sample secrets of every kind, each carrying a caller-chosen canary string."""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@functools.cache
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sample(kind: str, canary: str = "canary") -> dict[str, Any]:
    """A well-formed secret of kind whose secret parts contain canary."""
    b64 = base64.b64encode(canary.encode().ljust(32, b"x")).decode()
    future_sas = (
        "sv=2025-05-05&ss=b&srt=co&sp=rl&se=2099-01-01T00:00:00Z&st=2020-01-01T00:00:00Z"
        f"&spr=https&sig={base64.b64encode(canary.encode()).decode()}"
    )
    return {
        "AWS_ROLE": {"role_arn": "arn:aws:iam::123456789012:role/customer-images"},
        "S3_ACCESS_KEY": {
            "access_key_id": "AKIAEXAMPLE123456",
            "secret_access_key": f"{canary}-s3secret",
            "endpoint_url": "https://s3.example.com",
            "region": "us-east-1",
        },
        "GCS_SERVICE_ACCOUNT": {
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "kid1",
            "private_key": rsa_pem(),
            "client_email": "signer@proj.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
            "canary_note": canary,
        },
        "GCS_HMAC": {"access_id": "GOOG1EXAMPLEHMAC", "secret": f"{canary}-hmacsecret"},
        "AZURE_SAS": {"account_url": "https://acct.blob.core.windows.net", "sas_token": future_sas},
        "AZURE_SHARED_KEY": {
            "account_url": "https://acct.blob.core.windows.net",
            "account_name": "acct",
            "account_key": b64,
        },
        "AZURE_SERVICE_PRINCIPAL": {
            "account_url": "https://acct.blob.core.windows.net",
            "tenant_id": "00000000-0000-0000-0000-000000000001",
            "client_id": "00000000-0000-0000-0000-000000000002",
            "client_secret": f"{canary}-clientsecret",
        },
        # Keyless kinds: nothing secret to hide, but they register like every other kind.
        "GCS_IMPERSONATION": {"service_account": "images@customer.iam.gserviceaccount.com"},
        "AZURE_DELEGATED": {
            "account_url": "https://acct.blob.core.windows.net",
            "tenant_id": "00000000-0000-0000-0000-000000000003",
        },
    }[kind]


KINDS = (
    "AWS_ROLE",
    "S3_ACCESS_KEY",
    "GCS_SERVICE_ACCOUNT",
    "GCS_HMAC",
    "AZURE_SAS",
    "AZURE_SHARED_KEY",
    "AZURE_SERVICE_PRINCIPAL",
    "GCS_IMPERSONATION",
    "AZURE_DELEGATED",
)
