"""azure-core / azure-identity exceptions -> bucketvault errors, with stable reasons.

Messages carry the service's error code and HTTP status only: Azure's own messages can
echo the string to sign or request URLs, which have no place in our errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from bucketvault.providers.azure.onboarding import consent_url

if TYPE_CHECKING:
    from bucketvault.providers.azure.credentials import EntraIdentity

# Error codes Azure Storage answers when the caller is known but not allowed.
FORBIDDEN_CODES = frozenset(
    {
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationSourceIPMismatch",
        "AuthorizationProtocolMismatch",
        "AuthenticationFailed",
        "InsufficientAccountPermissions",
    }
)


# Azure Storage's "slow down" answers: 503 ServerBusy (account or partition limits), 500
# OperationTimedOut is not one (a server fault, retried as unavailable).
THROTTLING_CODES = frozenset({"ServerBusy", "TooManyRequests"})
# The RetryInfo delay when Azure sends no Retry-After.
RETRY_AFTER_SECONDS = 1.0


def _retry_after(exc: HttpResponseError) -> float:
    response = getattr(exc, "response", None)
    raw = str(response.headers.get("Retry-After", "")) if response is not None else ""
    try:
        seconds = float(raw)
    except ValueError:
        return RETRY_AFTER_SECONDS
    return min(max(seconds, 0.1), 60.0)


def _status(exc: HttpResponseError) -> int:
    return int(exc.status_code or 0)


def describe(exc: BaseException) -> str:
    """A safe one-line description: the error code and status, nothing the service echoed."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or "unknown"
        return f"Azure answered {_status(exc) or 'no status'} {code}"
    return type(exc).__name__


# AADSTS codes meaning the app has no service principal in the tenant, or no consent
# there: 700016 "not installed by the administrator of the tenant or consented to",
# 650052 "your organization lacks a service principal for", 65001 consent missing,
# 650051 as reported in issue 10. Microsoft warns codes may change: anything else is
# still a plain AZURE_AUTH_FAILED, never a wrong diagnosis.
CONSENT_CODES = frozenset({"65001", "650051", "650052", "700016"})


class TokenError(Exception):
    """Getting an Entra token failed (raised by our credential wrapper, cause attached)."""

    def __init__(self, what: str, *, code: str = "", identity: EntraIdentity | None = None) -> None:
        super().__init__(what)
        # The AADSTS number only: Entra's description is not ours to repeat.
        self.code = code
        self.identity = identity


def _token_failure(exc: BaseException, what: str) -> BucketVaultError:
    identity = exc.identity if isinstance(exc, TokenError) else None
    if identity is not None and identity.delegated:
        code = exc.code if isinstance(exc, TokenError) else ""
        if code in CONSENT_CODES:
            url = consent_url(identity.authority, identity.client_id, identity.tenant_id)
            return FailedPrecondition(
                f"{what}: the application {identity.client_id} is not consented in tenant "
                f"{identity.tenant_id} (AADSTS{code}): an administrator of that tenant must "
                f"open the consent URL {url}",
                reason="AZURE_APP_NOT_CONSENTED",
            )
        return FailedPrecondition(
            f"{what}: the service's application {identity.client_id} could not get a token "
            f"in tenant {identity.tenant_id}" + (f" (AADSTS{code})" if code else ""),
            reason="AZURE_AUTH_FAILED",
        )
    return FailedPrecondition(
        f"{what}: the service principal could not get a token",
        reason="AZURE_AUTH_FAILED",
    )


# MSAL's words for an error answer from a token endpoint (discovery included).
_HTTP_ERROR = re.compile(r"HTTP Error: (\d{3})")
# OAuth error codes that mean "try again later" (RFC 6749 5.2 and Entra's usage).
_TRANSIENT_OAUTH = ("temporarily_unavailable", "server_error")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _answered_status(exc: BaseException) -> int:
    if isinstance(exc, HttpResponseError) and exc.status_code:
        return int(exc.status_code)
    found = _HTTP_ERROR.search(str(exc))
    return int(found.group(1)) if found else 0


def token_outage(exc: BaseException, authority: str) -> BucketVaultError | None:
    """An Entra token call that got no usable answer (a stall, no connection, 5xx, 429):
    UNAVAILABLE with a token reason, not a refused credential. None: it was refused."""
    chain = list(_chain(exc))
    if any(isinstance(e, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)) for e in chain):
        return Unavailable(
            f"the Entra token endpoint at {authority} did not answer in time "
            "(BUCKETVAULT_AZURE_TIMEOUT_SECONDS, each of 1 + BUCKETVAULT_AZURE_RETRY_TOTAL tries)",
            reason="AZURE_TOKEN_TIMEOUT",
        )
    for e in chain:
        status = _answered_status(e)
        if isinstance(e, (ServiceRequestError, ServiceResponseError)):
            what = "is unreachable"
        elif status >= 500 or status == 429:
            what = f"answered {status}"
        elif any(code in str(e) for code in _TRANSIENT_OAUTH):
            what = "is temporarily unavailable"
        else:
            continue
        return Unavailable(
            f"the Entra token endpoint at {authority} {what}", reason="AZURE_TOKEN_UNAVAILABLE"
        )
    return None


def is_identity_error(exc: BaseException) -> bool:
    """True for azure-identity failures (bad tenant/client/secret, token endpoint down)."""
    return isinstance(exc, TokenError) or type(exc).__module__.startswith("azure.identity")


def translate(exc: BaseException, what: str) -> BucketVaultError:
    """Map an SDK error raised while doing `what` to our hierarchy."""
    if is_identity_error(exc):
        return _token_failure(exc, what)
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        return Unavailable(
            f"{what}: the storage account did not answer in time "
            "(BUCKETVAULT_AZURE_TIMEOUT_SECONDS, each of 1 + BUCKETVAULT_AZURE_RETRY_TOTAL tries)",
            reason="AZURE_TIMEOUT",
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return Unavailable(
            f"{what}: the storage account is unreachable", reason="AZURE_UNREACHABLE"
        )
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or ""
        if isinstance(exc, ResourceNotFoundError) or code == "ContainerNotFound":
            return NotFound(f"{what}: {describe(exc)}", reason="CONTAINER_NOT_FOUND")
        if code in FORBIDDEN_CODES or _status(exc) in (401, 403):
            return PermissionDenied(f"{what}: {describe(exc)}", reason="AZURE_FORBIDDEN")
        if code in THROTTLING_CODES or _status(exc) == 429:
            return ResourceExhausted(
                f"{what}: Azure is throttling ({describe(exc)}), after the SDK's retries",
                reason="AZURE_THROTTLED",
                retry_after=_retry_after(exc),
            )
        return Unavailable(f"{what}: {describe(exc)}", reason="AZURE_ERROR")
    return Unavailable(f"{what}: {describe(exc)}", reason="AZURE_ERROR")


__all__ = [
    "CONSENT_CODES",
    "FORBIDDEN_CODES",
    "THROTTLING_CODES",
    "TokenError",
    "describe",
    "is_identity_error",
    "token_outage",
    "translate",
]
