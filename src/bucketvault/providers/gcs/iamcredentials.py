"""The IAM Service Account Credentials API, called as the service's own identity.

POST {endpoint}/v1/projects/-/serviceAccounts/{email}:signBlob
    {"payload": base64}                            -> {"keyId", "signedBlob": base64}
POST {endpoint}/v1/projects/-/serviceAccounts/{email}:generateAccessToken
    {"scope": [...], "lifetime": "3600s"}          -> {"accessToken", "expireTime": RFC 3339}

The "-" project is what the API requires. Both need the service's identity to hold
roles/iam.serviceAccountTokenCreator on the customer's account; with "-" Google answers a
missing account with 403 as well, so 403 and 404 both mean "not granted (or no such
account)". Error bodies are not relayed: they are Google's words about the customer's
project.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from bucketvault.errors import BucketVaultError, FailedPrecondition, Unavailable
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.identity import ServiceIdentity
from bucketvault.urlpolicy import UrlPolicy

TIMEOUT = (5.0, 15.0)
TOKEN_CREATOR_ROLE = "roles/iam.serviceAccountTokenCreator"
# Connections kept per host: the signing fan-out (parallel.REMOTE_WORKERS) shares them.
POOL_SIZE = 16


@dataclass(frozen=True)
class MintedToken:
    """An impersonated account's access token and when Google says it expires."""

    token: str = field(repr=False)
    expires_at: datetime


def not_granted(identity: str, account: str) -> FailedPrecondition:
    """The customer has not let our identity act as their account: say what to grant."""
    return FailedPrecondition(
        f"the service's identity {identity} may not act as {account}: grant it "
        f"{TOKEN_CREATOR_ROLE} on {account} (GetOnboarding shows the command)",
        reason="IMPERSONATION_NOT_GRANTED",
    )


def iam_error(status: int, identity: str, account: str, what: str) -> BucketVaultError:
    """An IAM Credentials HTTP status as the service's error."""
    if status in (403, 404):
        return not_granted(identity, account)
    if status == 401:
        return FailedPrecondition(
            f"IAM Credentials did not accept the service's identity {identity}",
            reason="GCP_IDENTITY_REJECTED",
        )
    if status == 400:
        return FailedPrecondition(
            f"IAM Credentials refused {what} for {account}", reason="IAM_CREDENTIALS_REFUSED"
        )
    # 429 (quota) and 5xx: the caller may retry.
    return Unavailable(
        f"IAM Credentials answered {status} to {what} for {account}: retry later",
        reason="IAM_CREDENTIALS_UNAVAILABLE",
    )


def _bad_response(account: str, what: str) -> Unavailable:
    return Unavailable(
        f"IAM Credentials answered {what} for {account} with something unreadable",
        reason="IAM_CREDENTIALS_UNAVAILABLE",
    )


class IamCredentials:
    """signBlob and generateAccessToken for the customers' accounts; thread-safe."""

    def __init__(
        self, endpoint: str, identity: ServiceIdentity, egress: Egress | None = None
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._identity = identity
        # Google's IAM Credentials by default: the strict policy fits it.
        self._session = (egress or Egress(UrlPolicy())).session(pool_maxsize=POOL_SIZE)

    def __repr__(self) -> str:
        return f"IamCredentials(endpoint={self._endpoint!r})"

    @property
    def identity(self) -> ServiceIdentity:
        """Who calls the API."""
        return self._identity

    def _post(self, account: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
        # The address passed SERVICE_ACCOUNT_EMAIL; quoted all the same.
        name = quote(account, safe="@.")
        url = f"{self._endpoint}/v1/projects/-/serviceAccounts/{name}:{method}"
        headers = {"Authorization": f"Bearer {self._identity.token()}"}
        try:
            response = self._session.post(url, json=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Unavailable(
                f"IAM Credentials at {self._endpoint} is unreachable",
                reason="IAM_CREDENTIALS_UNAVAILABLE",
            ) from exc
        if response.status_code != 200:
            raise iam_error(response.status_code, self._identity.email, account, method)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _bad_response(account, method)
        return data

    def sign_blob(self, account: str, payload: bytes) -> bytes:
        """account's signature (RSA PKCS#1 v1.5 SHA-256, Google-managed key) of payload."""
        data = self._post(account, "signBlob", {"payload": base64.b64encode(payload).decode()})
        try:
            return base64.b64decode(str(data["signedBlob"]), validate=True)
        except (KeyError, binascii.Error):
            raise _bad_response(account, "signBlob") from None

    def generate_access_token(
        self, account: str, scopes: Sequence[str], lifetime: timedelta
    ) -> MintedToken:
        """An access token of account with these scopes."""
        body = {"scope": list(scopes), "lifetime": f"{int(lifetime.total_seconds())}s"}
        data = self._post(account, "generateAccessToken", body)
        token, expire = data.get("accessToken"), data.get("expireTime")
        if not isinstance(token, str) or not token or not isinstance(expire, str):
            raise _bad_response(account, "generateAccessToken")
        try:
            # RFC 3339 with a Z (and sometimes fractional seconds).
            expires_at = datetime.fromisoformat(expire.replace("Z", "+00:00"))
        except ValueError:
            raise _bad_response(account, "generateAccessToken") from None
        return MintedToken(token, expires_at)

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()


__all__ = [
    "TOKEN_CREATOR_ROLE",
    "IamCredentials",
    "MintedToken",
    "iam_error",
    "not_granted",
]
