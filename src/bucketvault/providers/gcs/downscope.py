"""Downscoped listing tokens: a Credential Access Boundary per mount, exchanged at STS.

The impersonated account may read far more than one mount. Its access token (from
generateAccessToken) is exchanged at Google's Security Token Service for one bounded to
the mount's bucket and prefix, as ``google.auth.downscoped`` does:

POST {sts endpoint}   (application/x-www-form-urlencoded, no Authorization header)
    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    subject_token=<the impersonated account's access token>
    subject_token_type=urn:ietf:params:oauth:token-type:access_token
    requested_token_type=urn:ietf:params:oauth:token-type:access_token
    options=<URL-encoded JSON {"accessBoundary": {"accessBoundaryRules": [...]}}>
-> {"access_token", "issued_token_type", "token_type", "expires_in" (may be absent)}

A downscoped token never outlives its source, so without ``expires_in`` it expires with
it. The boundary allows roles/storage.objectViewer on the bucket; a mount with a prefix
adds a CEL condition: objects whose name starts with the prefix, and listings whose
``prefix`` parameter does (storage.googleapis.com/objectListPrefix).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, FailedPrecondition, Unavailable
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.errors import ListTarget
from bucketvault.providers.gcs.identity import DEFAULT_STS_ENDPOINT
from bucketvault.providers.gcs.tokens import TOKEN_WINDOWS, AccessToken
from bucketvault.providers.refresh import Expiring, RefreshingValue, Spawn, start_thread
from bucketvault.urlpolicy import UrlPolicy

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
LIST_PERMISSIONS = ("inRole:roles/storage.objectViewer",)
LIST_PREFIX_ATTRIBUTE = "storage.googleapis.com/objectListPrefix"
TIMEOUT = (5.0, 15.0)


def cel_string(text: str) -> str:
    """text as a single-quoted CEL string literal.

    Backslash and both quotes are escaped; control characters (and DEL) become \\uXXXX,
    since a CEL single-quoted literal may not hold a raw newline. Everything else (any
    Unicode) is legal in a CEL string as is.
    """
    out = []
    for char in text:
        if char in "\\'\"":
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def prefix_condition(bucket: str, prefix: str) -> str:
    """The CEL expression that keeps a token to objects (and listings) under prefix."""
    objects = cel_string(f"projects/_/buckets/{bucket}/objects/{prefix}")
    return (
        f"resource.name.startsWith({objects}) || "
        f"api.getAttribute({cel_string(LIST_PREFIX_ATTRIBUTE)}, '').startsWith("
        f"{cel_string(prefix)})"
    )


def access_boundary(bucket: str, prefix: str) -> dict[str, Any]:
    """The Credential Access Boundary of a read-only token for bucket (and prefix)."""
    rule: dict[str, Any] = {
        "availableResource": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "availablePermissions": list(LIST_PERMISSIONS),
    }
    if prefix:
        rule["availabilityCondition"] = {"expression": prefix_condition(bucket, prefix)}
    return {"accessBoundary": {"accessBoundaryRules": [rule]}}


def sts_error(status: int, account: str, bucket: str) -> BucketVaultError:
    """An STS HTTP status as the service's error (STS's own words are not relayed)."""
    if status in (400, 401, 403):
        return FailedPrecondition(
            f"STS refused to downscope the token of {account} to bucket {bucket} "
            f"(HTTP {status}): the account's token cannot be downscoped",
            reason="GCP_STS_REFUSED",
        )
    # 429 and 5xx: the caller may retry.
    return Unavailable(
        f"STS answered {status} when downscoping the token of {account}: retry later",
        reason="GCP_STS_UNAVAILABLE",
    )


class StsClient:
    """The token exchange at Google's STS; thread-safe."""

    def __init__(self, endpoint: str = DEFAULT_STS_ENDPOINT, egress: Egress | None = None) -> None:
        self._endpoint = endpoint
        # Google's STS by default: the strict policy fits it.
        self._session = (egress or Egress(UrlPolicy())).session()

    def __repr__(self) -> str:
        return f"StsClient(endpoint={self._endpoint!r})"

    def exchange(
        self,
        subject: AccessToken,
        boundary: dict[str, Any],
        *,
        account: str,
        bucket: str,
        now: datetime,
    ) -> AccessToken:
        """subject exchanged for a token bounded by boundary (never outliving subject)."""
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": subject.token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            # As google.auth.oauth2.sts: the JSON is URL-encoded, then form-encoded again.
            "options": quote(json.dumps(boundary)),
        }
        try:
            response = self._session.post(self._endpoint, data=form, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Unavailable(
                f"STS at {self._endpoint} is unreachable", reason="GCP_STS_UNAVAILABLE"
            ) from exc
        if response.status_code != 200:
            raise sts_error(response.status_code, account, bucket)
        try:
            data = response.json()
        except ValueError:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise Unavailable(
                f"STS answered the exchange for {account} with something unreadable",
                reason="GCP_STS_UNAVAILABLE",
            )
        expires_at = subject.expires_at
        lifetime = data.get("expires_in") if isinstance(data, dict) else None
        if isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0:
            expires_at = min(expires_at, now + timedelta(seconds=lifetime))
        return AccessToken(token, expires_at)

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()


class DownscopedTokens:
    """Listing tokens per (bucket, prefix) of one impersonated account, each cached and
    refreshed ahead by the shared refresh cache."""

    def __init__(
        self,
        source: Callable[[], AccessToken],
        sts: StsClient,
        account: str,
        clock: Clock,
        *,
        spawn: Spawn = start_thread,
    ) -> None:
        self._source = source
        self._sts = sts
        self._account = account
        self._clock = clock
        self._spawn = spawn
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], RefreshingValue[AccessToken]] = {}

    def __repr__(self) -> str:
        return f"DownscopedTokens(account={self._account!r}, held={len(self._held)})"

    def _holder(self, bucket: str, prefix: str) -> RefreshingValue[AccessToken]:
        with self._lock:
            holder = self._held.get((bucket, prefix))
            if holder is None:
                boundary = access_boundary(bucket, prefix)

                def mint() -> Expiring[AccessToken]:
                    token = self._sts.exchange(
                        self._source(),
                        boundary,
                        account=self._account,
                        bucket=bucket,
                        now=self._clock.now(),
                    )
                    return Expiring(token, token.expires_at)

                holder = RefreshingValue(
                    mint,
                    self._clock,
                    TOKEN_WINDOWS,
                    spawn=self._spawn,
                    what="downscoped GCS access token",
                )
                self._held[(bucket, prefix)] = holder
            return holder

    def token_for(self, target: ListTarget) -> str:
        """A valid token bounded to the target's bucket and mount prefix."""
        return self._holder(target.bucket, target.prefix).get().value.token

    def clear(self) -> None:
        """Forget every token (handle closed)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for holder in held:
            holder.close()


__all__ = [
    "DownscopedTokens",
    "StsClient",
    "access_boundary",
    "cel_string",
    "prefix_condition",
    "sts_error",
]
