"""OAuth access tokens minted from a service-account key, cached per handle.

google-auth builds and signs the JWT-bearer grant and calls the key's token_uri; the
shared refresh-ahead cache (providers/refresh.py) decides when, with the injected
Clock: background refresh in the last 5 minutes, blocking in the last minute, and a
token with less than a minute left is never handed out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.providers.gcs.errors import token_error
from bucketvault.providers.refresh import (
    Expiring,
    RefreshingValue,
    RefreshWindows,
    Spawn,
    start_thread,
)
from bucketvault.urlpolicy import UrlPolicy

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
TOKEN_WINDOWS = RefreshWindows(
    advisory=timedelta(minutes=5),
    mandatory=timedelta(minutes=1),
    retry_after=timedelta(seconds=10),
    # A listing takes a while: never start one with a token about to die.
    usable_margin=timedelta(minutes=1),
)
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


class GoogleTokens:
    """One google-auth credential's access token: cached, refreshed ahead, single-flight.

    ``check`` runs before every grant (the token endpoint must still be allowed);
    ``principal`` names the account in messages.
    """

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        principal: str,
        clock: Clock,
        session: requests.Session,
        *,
        check: Callable[[], None] = lambda: None,
        timeout: float = TIMEOUT_SECONDS,
        spawn: Spawn = start_thread,
    ) -> None:
        self._credentials = credentials
        self._principal = principal
        self._check = check
        self._clock = clock
        self._request = _RecordingRequest(session, timeout)
        self._tokens: RefreshingValue[AccessToken] = RefreshingValue(
            lambda: self._mint(self._clock.now()),
            clock,
            TOKEN_WINDOWS,
            spawn=spawn,
            what="GCS access token",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(principal={self._principal!r})"

    def token(self) -> str:
        """A valid access token (cached, or minted now)."""
        return self._tokens.get().value.token

    def _mint(self, now: datetime) -> Expiring[AccessToken]:
        self._check()
        try:
            self._credentials.refresh(self._request)  # type: ignore[no-untyped-call]
        except (
            google.auth.exceptions.RefreshError,
            google.auth.exceptions.TransportError,
            requests.RequestException,
        ) as exc:
            raise token_error(exc, self._principal) from exc
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise FailedPrecondition(
                f"the token endpoint returned no access token for {self._principal}",
                reason="GCS_TOKEN_REFUSED",
            )
        # The response's expires_in, counted on the injected clock (google-auth's own
        # expiry reads the system clock).
        expires_at = now + _lifetime(self._request.last_body)
        return Expiring(AccessToken(token=token, expires_at=expires_at), expires_at)

    def clear(self) -> None:
        """Forget the cached token; later calls fail (the handle is closed)."""
        self._tokens.close()


class TokenCache(GoogleTokens):
    """A customer's service-account key's access token (read-only storage scope)."""

    def __init__(
        self,
        info: Mapping[str, Any],
        clock: Clock,
        url_policy: UrlPolicy,
        session: requests.Session,
        *,
        timeout: float = TIMEOUT_SECONDS,
        spawn: Spawn = start_thread,
    ) -> None:
        client_email = str(info.get("client_email", ""))
        token_uri = str(info.get("token_uri", ""))
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            dict(info), scopes=[READ_ONLY_SCOPE]
        )

        def check() -> None:
            try:
                # Checked again here, not only at registration: the allow-list may have shrunk.
                url_policy.check_token_uri(token_uri)
            except InvalidArgument as exc:
                raise FailedPrecondition(
                    f"the token_uri of {client_email} is not an allowed token endpoint",
                    reason="TOKEN_URI_NOT_ALLOWED",
                ) from exc

        super().__init__(
            credentials, client_email, clock, session, check=check, timeout=timeout, spawn=spawn
        )


__all__ = ["READ_ONLY_SCOPE", "TOKEN_WINDOWS", "AccessToken", "GoogleTokens", "TokenCache"]
