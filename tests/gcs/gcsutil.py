"""Builders for the GCS tests and a local token endpoint (emulators: bucketvault.testing)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import google.auth.jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bucketvault.clock import Clock
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
)
from bucketvault.providers.gcs import build
from bucketvault.providers.gcs.provider import GcsProvider
from bucketvault.testing.loopback import LoopbackServer, StandInHandler
from bucketvault.testing.ports import free_port  # noqa: F401 (re-exported for the tests)
from bucketvault.testing.providers import RawSecret, Ruled, RuledHandle
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI, UrlPolicy

CLIENT_EMAIL = "signer@bv-test.iam.gserviceaccount.com"
HMAC_ACCESS_ID = "GOOG1EXAMPLEACCESSID"
HMAC_SECRET = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"

# The fake-gcs-server bucket every listing test reads (filled once per session).
LISTING_BUCKET = "listing-bucket"
DIRECT = [f"big/obj-{i:05d}.bin" for i in range(2500)]
NESTED = [f"big/sub-{k}/x-{j}.bin" for k in range(5) for j in range(3)]
ODD_KEYS = ["odd/sp ace+plus%~.txt", "odd/ünï/😀.png", "odd/a//b"]


def upload(session: requests.Session, base: str, bucket: str, name: str, data: bytes) -> None:
    r = session.post(
        f"{base}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": name},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    r.raise_for_status()


def fill_listing_bucket(base: str) -> str:
    with requests.Session() as s:
        s.post(
            f"{base}/storage/v1/b",
            params={"project": "bv-test"},
            json={"name": LISTING_BUCKET},
            timeout=10,
        ).raise_for_status()
        for name in DIRECT + NESTED:
            upload(s, base, LISTING_BUCKET, name, name.encode())
        for name in ODD_KEYS:
            upload(s, base, LISTING_BUCKET, name, b"bytes of " + name.encode())
    return LISTING_BUCKET


def pem(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sa_info(key: RSAPrivateKey, token_uri: str = GOOGLE_TOKEN_URI) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "bv-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem(key),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


def make_mount(bucket: str, endpoint: str = "", prefix: str = "", max_ttl: int = 3600) -> Mount:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    return Mount(
        mount_id="m-1",
        tenant="acme",
        name="m",
        bucket=bucket,
        prefix=prefix,
        region="",
        endpoint=endpoint,
        credential_id="c-1",
        policy=MountPolicy(max_ttl, frozenset(Method)),
        version=1,
        created_at=when,
        updated_at=when,
    )


def make_credential(kind: CredentialKind) -> Credential:
    return Credential(
        credential_id="c-1",
        tenant="acme",
        display_name="test",
        kind=kind,
        state=CredentialState.ACTIVE,
        fingerprint="fp",
        metadata={},
        warnings=(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        created_by="test",
    )


def make_provider(clock: Clock, token_uris: frozenset[str] = frozenset()) -> Ruled:
    policy = UrlPolicy(allow_insecure=True, token_uri_allowlist=token_uris | {GOOGLE_TOKEN_URI})
    provider = build({"BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": "1"}, clock, policy)
    assert isinstance(provider, GcsProvider)
    return Ruled(provider, clock, url_policy=policy)


def open_handle(provider: Ruled, kind: CredentialKind, fields: Mapping[str, Any]) -> RuledHandle:
    return provider.open(make_credential(kind), RawSecret(kind, dict(fields)))


@dataclass
class TokenState:
    """What the local token endpoint does and has seen; reset per test."""

    mode: str = "ok"  # ok | refuse | error
    expires_in: int = 3600
    delay: float = 0.0
    grants: int = 0
    issued: list[str] = field(default_factory=list)
    bearer_seen: list[str] = field(default_factory=list)


class TokenEndpoint:
    """OAuth JWT-bearer token endpoint on 127.0.0.1 that checks the assertion's signature.

    It also answers the JSON API listing path with 403 for every bucket, to stand in
    for a GCS that denies storage.objects.list (fake-gcs-server never denies).
    """

    def __init__(self, public_pem: bytes) -> None:
        self.state = TokenState()
        self._lock = threading.Lock()
        endpoint = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                status, body = endpoint.grant(form, public_pem)
                self.reply_json(status, body)

            def do_GET(self) -> None:
                with endpoint._lock:
                    endpoint.state.bearer_seen.append(self.headers.get("Authorization", ""))
                self.reply_json(
                    403, {"error": {"code": 403, "message": "caller lacks storage.objects.list"}}
                )

        self._server = LoopbackServer(Handler)
        self.port = self._server.port
        self.url = f"{self._server.url}/token"
        self.base = self._server.url

    def grant(self, form: dict[str, list[str]], public_pem: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.state.grants += 1
            number = self.state.grants
            mode, delay, expires_in = self.state.mode, self.state.delay, self.state.expires_in
        if delay:
            time.sleep(delay)
        if mode == "error":
            return 503, {"error": "backend_error"}
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        try:
            # google-auth addresses the assertion to Google's endpoint whatever token_uri is.
            claims = google.auth.jwt.decode(
                form["assertion"][0], certs=public_pem, audience=GOOGLE_TOKEN_URI
            )
        except (ValueError, KeyError):
            return 400, {"error": "invalid_grant", "error_description": "bad assertion"}
        if mode == "refuse" or claims.get("iss") != CLIENT_EMAIL:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = f"ya29.test-{number}"
        with self._lock:
            self.state.issued.append(token)
        return 200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    def reset(self) -> TokenState:
        with self._lock:
            self.state = TokenState()
            return self.state

    def close(self) -> None:
        self._server.close()


# The customer's service account the keyless kind impersonates (the service's own
# identity is CLIENT_EMAIL, whose key file points at the local TokenEndpoint).
CUSTOMER_SA = "bucket-reader@customer-prj.iam.gserviceaccount.com"


def identity_env(
    directory: Path, key: RSAPrivateKey, token_url: str, iam_url: str
) -> dict[str, str]:
    """The service's own Google identity (a key file, 0600), the IAM Credentials endpoint and
    STS (the IAM stand-in serves both)."""
    path = directory / "bucketvault-identity.json"
    path.write_text(json.dumps(sa_info(key, token_url)))
    path.chmod(0o600)
    return {
        "BUCKETVAULT_GCP_CREDENTIALS_FILE": str(path),
        "BUCKETVAULT_GCP_IAM_CREDENTIALS_ENDPOINT": iam_url,
        "BUCKETVAULT_GCP_STS_ENDPOINT": f"{iam_url}/v1/token",
    }


def accepts_issued(endpoint: TokenEndpoint) -> Callable[[str], bool]:
    """For the IAM stand-in: a bearer token is good if the token endpoint issued it."""
    return lambda token: token in endpoint.state.issued
