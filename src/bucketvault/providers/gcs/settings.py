"""The GCS provider's timeouts and retries, read once from the environment mapping it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
from urllib3.util.retry import Retry

from bucketvault.config import env_int, env_seconds

# One GCS call (a JSON listing page, an interop ListObjectsV2): connecting, then waiting
# for the answer. A stalled GCS costs attempts x the read timeout, so both stay small
# enough that a listing fails well inside a caller's deadline.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
# Attempts of one listing call, the first included (jittered exponential back-off).
MAX_ATTEMPTS = 3
# One call to a service account's token_uri (google-auth itself retries a 5xx answer
# twice with jittered back-off; a stall costs this once).
TOKEN_TIMEOUT_SECONDS = 10.0
# Statuses a listing GET is retried on: GCS's documented transient answers.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class GcsSettings:
    """Bounded timeouts and retries for GCS listing and token calls."""

    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
    read_timeout_seconds: float = READ_TIMEOUT_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    token_timeout_seconds: float = TOKEN_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GcsSettings:
        """Parse BUCKETVAULT_GCS_*; a bad value fails start-up."""
        return cls(
            connect_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_GCS_CONNECT_TIMEOUT_SECONDS", CONNECT_TIMEOUT_SECONDS
            ),
            read_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_GCS_TIMEOUT_SECONDS", READ_TIMEOUT_SECONDS
            ),
            max_attempts=env_int(env, "BUCKETVAULT_GCS_MAX_ATTEMPTS", MAX_ATTEMPTS, 1, 10),
            token_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_GCS_TOKEN_TIMEOUT_SECONDS", TOKEN_TIMEOUT_SECONDS
            ),
        )

    @property
    def timeout(self) -> tuple[float, float]:
        """requests' (connect, read) timeout for one GCS call."""
        return (self.connect_timeout_seconds, self.read_timeout_seconds)

    def retry(self) -> Retry:
        """urllib3 retries for listing GETs: bounded, exponential back-off with jitter.

        Retry-After is not slept on (GCS's JSON API sends none; a long one would hold the
        caller): the last answer is returned and mapped, 429 with our RetryInfo delay.
        """
        return Retry(
            total=self.max_attempts - 1,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=0.25,
            backoff_jitter=0.25,
            backoff_max=2.0,
            respect_retry_after_header=False,
            raise_on_status=False,
            raise_on_redirect=False,
        )

    def retrying(self, session: requests.Session) -> requests.Session:
        """The session, its adapters now retrying listing GETs (POSTs are not retried)."""
        for adapter in session.adapters.values():
            if isinstance(adapter, requests.adapters.HTTPAdapter):
                adapter.max_retries = self.retry()
        return session


__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MAX_ATTEMPTS",
    "READ_TIMEOUT_SECONDS",
    "TOKEN_TIMEOUT_SECONDS",
    "GcsSettings",
]
