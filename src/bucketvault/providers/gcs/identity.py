"""The service's own Google identity: whom customers grant, and its access tokens.

Configured once for the process. ``BUCKETVAULT_GCP_CREDENTIALS_FILE`` names a
service-account key file of the service's own account; unset, Application Default
Credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server on GCE/GKE ...) are
used. Loaded at first use, not at start-up: a deployment whose tenants use no keyless GCS
kind needs no Google identity, and the other GCS kinds must keep working without one.

The key file's token_uri and the IAM Credentials and STS endpoints pass the URL policy (https
only unless insecure endpoints are allowed, as tests do). They are the operator's
configuration, not a customer's, so the customer token-URI allow-list does not apply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import google.auth
import google.auth.credentials
import google.auth.exceptions
from google.oauth2 import service_account

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.kinds import SERVICE_ACCOUNT_EMAIL
from bucketvault.providers.gcs.tokens import GoogleTokens
from bucketvault.providers.refresh import Spawn, start_thread
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI, UrlPolicy

CREDENTIALS_FILE_ENV = "BUCKETVAULT_GCP_CREDENTIALS_FILE"
IAM_ENDPOINT_ENV = "BUCKETVAULT_GCP_IAM_CREDENTIALS_ENDPOINT"
DEFAULT_IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
# Where impersonated listing tokens are downscoped (downscope.py); the full token URL.
STS_ENDPOINT_ENV = "BUCKETVAULT_GCP_STS_ENDPOINT"
DEFAULT_STS_ENDPOINT = "https://sts.googleapis.com/v1/token"
# IAM Credentials accepts cloud-platform (or iam) scoped tokens of the caller.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class GcpIdentityConfig:
    """Where the service's own Google identity comes from and which endpoints it calls."""

    credentials_file: Path | None
    iam_endpoint: str
    sts_endpoint: str = DEFAULT_STS_ENDPOINT

    @classmethod
    def from_env(cls, env: Mapping[str, str], url_policy: UrlPolicy) -> GcpIdentityConfig:
        """Read once at start-up; a disallowed endpoint fails fast."""
        raw = env.get(CREDENTIALS_FILE_ENV, "").strip()

        def endpoint(name: str, default: str) -> str:
            # Google's own endpoint is a constant, not input: checking it would only make
            # start-up depend on DNS. An override is checked like any endpoint we call.
            override = env.get(name, "").strip()
            return url_policy.check_endpoint(override, field=name) if override else default

        return cls(
            credentials_file=Path(raw) if raw else None,
            iam_endpoint=endpoint(IAM_ENDPOINT_ENV, DEFAULT_IAM_ENDPOINT),
            sts_endpoint=endpoint(STS_ENDPOINT_ENV, DEFAULT_STS_ENDPOINT),
        )


class ServiceIdentity(Protocol):
    """The service account the service acts as when it impersonates a customer's."""

    @property
    def email(self) -> str:
        """The account customers grant roles/iam.serviceAccountTokenCreator to."""
        ...

    def token(self) -> str:
        """A valid access token of that account (cloud-platform scope)."""
        ...


def _unavailable(problem: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the service's own Google identity is not usable: {problem}",
        reason="GCP_IDENTITY_UNAVAILABLE",
    )


Loaded = tuple[google.auth.credentials.Credentials, str]


def load_key_file(path: Path, url_policy: UrlPolicy) -> Loaded:
    """A service-account key file -> (credentials, email); its token_uri must pass policy."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        # No excerpt: the file holds a private key.
        raise _unavailable(f"{CREDENTIALS_FILE_ENV} is not a readable JSON key file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise _unavailable(f"{CREDENTIALS_FILE_ENV} is not a service-account key file")
    try:
        token_uri = str(info.get("token_uri") or GOOGLE_TOKEN_URI)
        if token_uri != GOOGLE_TOKEN_URI:  # Google's own needs no DNS check (see above)
            token_uri = url_policy.check_endpoint(
                token_uri, field=f"{CREDENTIALS_FILE_ENV} token_uri"
            )
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            {**info, "token_uri": token_uri}, scopes=[CLOUD_PLATFORM_SCOPE]
        )
    except InvalidArgument as exc:
        raise _unavailable(exc.message) from None
    except (ValueError, KeyError):
        raise _unavailable(f"{CREDENTIALS_FILE_ENV} holds no usable private key") from None
    return credentials, str(info.get("client_email", ""))


def load_default() -> Loaded:
    """Application Default Credentials -> (credentials, email if they are an account's)."""
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise _unavailable(
            f"{CREDENTIALS_FILE_ENV} is unset and no Application Default Credentials exist"
        ) from None
    return credentials, str(getattr(credentials, "service_account_email", "") or "")


class GoogleIdentity:
    """The service's identity, loaded once on first use; tokens cached and refreshed."""

    def __init__(
        self,
        config: GcpIdentityConfig,
        clock: Clock,
        url_policy: UrlPolicy,
        *,
        load: Callable[[], Loaded] | None = None,
        spawn: Spawn = start_thread,
    ) -> None:
        self.config = config
        self._clock = clock
        self._spawn = spawn
        path = config.credentials_file
        self._load = load or (
            (lambda: load_key_file(path, url_policy)) if path is not None else load_default
        )
        self._lock = threading.Lock()
        self._session = Egress(url_policy).session()
        self._loaded: tuple[GoogleTokens, str] | None = None

    def __repr__(self) -> str:
        return f"GoogleIdentity(credentials_file={self.config.credentials_file!s})"

    def _tokens(self) -> tuple[GoogleTokens, str]:
        with self._lock:
            if self._loaded is None:
                credentials, email = self._load()
                tokens = GoogleTokens(
                    credentials,
                    f"the service's identity {email or '(ADC)'}",
                    self._clock,
                    self._session,
                    spawn=self._spawn,
                )
                if email in ("", "default"):
                    # The metadata server names its account only once asked for a token.
                    tokens.token()
                    email = str(getattr(credentials, "service_account_email", "") or "")
                if not SERVICE_ACCOUNT_EMAIL.match(email):
                    raise _unavailable(
                        "its credentials are not a service account's (user credentials "
                        "cannot be granted roles/iam.serviceAccountTokenCreator for this use)"
                    )
                self._loaded = (tokens, email)
            return self._loaded

    @property
    def email(self) -> str:
        """The service account customers grant access to."""
        return self._tokens()[1]

    def token(self) -> str:
        """An access token of the service's own account."""
        return self._tokens()[0].token()

    def close(self) -> None:
        """Forget tokens (shutdown)."""
        with self._lock:
            if self._loaded is not None:
                self._loaded[0].clear()
            self._loaded = None
        self._session.close()


__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "CREDENTIALS_FILE_ENV",
    "DEFAULT_IAM_ENDPOINT",
    "DEFAULT_STS_ENDPOINT",
    "IAM_ENDPOINT_ENV",
    "STS_ENDPOINT_ENV",
    "GcpIdentityConfig",
    "GoogleIdentity",
    "ServiceIdentity",
    "load_default",
    "load_key_file",
]
