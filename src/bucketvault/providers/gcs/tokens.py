"""OAuth access tokens minted from a service-account key, cached per handle.

google-auth builds and signs the JWT-bearer grant and calls the key's token_uri. The
cache decides freshness with the injected Clock: a token is refreshed once it is
inside the advisory window before expiry, by exactly one caller at a time (the others
keep using the current token, or wait for the refresh when it has none left). If the
token endpoint fails while the cached token is still outside the mandatory window,
the cached token keeps serving.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition, InvalidArgument, Unavailable
from bucketvault.urlpolicy import UrlPolicy

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
ADVISORY_WINDOW = timedelta(minutes=5)
MANDATORY_WINDOW = timedelta(minutes=1)
# If the endpoint does not say how long a token lives, assume briefly.
DEFAULT_LIFETIME = timedelta(minutes=10)
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: datetime


class _RecordingRequest(google.auth.transport.Request):
    """google-auth transport that remembers the token response (for its expires_in)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self._inner = google.auth.transport.requests.Request(session)
        self._timeout = timeout
        self.last_body: bytes = b""

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        response = self._inner(
            url, method=method, body=body, headers=headers, timeout=self._timeout, **kwargs
        )
        self.last_body = bytes(response.data)
        return response


def _lifetime(body: bytes) -> timedelta:
    try:
        value = json.loads(body).get("expires_in")
        return timedelta(seconds=int(value)) if value is not None else DEFAULT_LIFETIME
    except (ValueError, TypeError, AttributeError):
        return DEFAULT_LIFETIME


class TokenCache:
    """A service account's access token: cached, refreshed ahead of expiry, single-flight."""

    def __init__(
        self,
        info: Mapping[str, Any],
        clock: Clock,
        url_policy: UrlPolicy,
        session: requests.Session,
        *,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._client_email = str(info.get("client_email", ""))
        self._token_uri = str(info.get("token_uri", ""))
        self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            dict(info), scopes=[READ_ONLY_SCOPE]
        )
        self._clock = clock
        self._url_policy = url_policy
        self._request = _RecordingRequest(session, timeout)
        self._refresh_lock = threading.Lock()
        self._current: AccessToken | None = None
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenCache(client_email={self._client_email!r})"

    def token(self) -> str:
        """A valid access token, refreshing it when it is inside the advisory window."""
        current = self._current
        now = self._clock.now()
        if current is not None and now < current.expires_at - ADVISORY_WINDOW:
            return current.token
        if current is not None and now < current.expires_at - MANDATORY_WINDOW:
            # Advisory window: one caller refreshes, the others keep the current token.
            if not self._refresh_lock.acquire(blocking=False):
                return current.token
            try:
                return self._refresh_locked(current).token
            finally:
                self._refresh_lock.release()
        with self._refresh_lock:
            return self._refresh_locked(current).token

    def _refresh_locked(self, seen: AccessToken | None) -> AccessToken:
        current = self._current
        now = self._clock.now()
        if current is not None and current is not seen:
            # Someone refreshed while we waited for the lock.
            return current
        if current is not None and now < current.expires_at - ADVISORY_WINDOW:
            return current
        try:
            fresh = self._mint(now)
        except Unavailable:
            if current is not None and now < current.expires_at - MANDATORY_WINDOW:
                return current
            raise
        self._current = fresh
        return fresh

    def _mint(self, now: datetime) -> AccessToken:
        try:
            # Checked again here, not only at registration: the allow-list may have shrunk.
            self._url_policy.check_token_uri(self._token_uri)
        except InvalidArgument as exc:
            raise FailedPrecondition(
                f"the token_uri of {self._client_email} is not an allowed token endpoint",
                reason="TOKEN_URI_NOT_ALLOWED",
            ) from exc
        self.refreshes += 1
        try:
            self._credentials.refresh(self._request)
        except google.auth.exceptions.RefreshError as exc:
            # The endpoint answered and refused the key (deleted, disabled, wrong audience).
            # Its body is not repeated: a token endpoint's error text is not ours to relay.
            if getattr(exc, "retryable", False):
                raise Unavailable(
                    f"the token endpoint failed for {self._client_email}",
                    reason="GCS_TOKEN_UNAVAILABLE",
                ) from exc
            raise FailedPrecondition(
                f"the token endpoint refused the key of {self._client_email}",
                reason="GCS_TOKEN_REFUSED",
            ) from exc
        except (google.auth.exceptions.TransportError, requests.RequestException) as exc:
            raise Unavailable(
                f"the token endpoint for {self._client_email} is unreachable",
                reason="GCS_TOKEN_UNAVAILABLE",
            ) from exc
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise FailedPrecondition(
                f"the token endpoint returned no access token for {self._client_email}",
                reason="GCS_TOKEN_REFUSED",
            )
        return AccessToken(token=token, expires_at=now + _lifetime(self._request.last_body))

    def clear(self) -> None:
        """Forget the cached token."""
        with self._refresh_lock:
            self._current = None


__all__ = ["AccessToken", "TokenCache"]
