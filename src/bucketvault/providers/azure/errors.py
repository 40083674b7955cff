"""azure-core / azure-identity exceptions -> bucketvault errors, with stable reasons.

Messages carry the service's error code and HTTP status only: Azure's own messages can
echo the string to sign or request URLs, which have no place in our errors.
"""

from __future__ import annotations

from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)

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


def _status(exc: HttpResponseError) -> int:
    return int(exc.status_code or 0)


def describe(exc: BaseException) -> str:
    """A safe one-line description: the error code and status, nothing the service echoed."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or "unknown"
        return f"Azure answered {_status(exc) or 'no status'} {code}"
    return type(exc).__name__


class TokenError(Exception):
    """Getting an Entra token failed (raised by our credential wrapper, cause attached)."""


def is_identity_error(exc: BaseException) -> bool:
    """True for azure-identity failures (bad tenant/client/secret, token endpoint down)."""
    return isinstance(exc, TokenError) or type(exc).__module__.startswith("azure.identity")


def translate(exc: BaseException, what: str) -> BucketVaultError:
    """Map an SDK error raised while doing `what` to our hierarchy."""
    if is_identity_error(exc):
        return FailedPrecondition(
            f"{what}: the service principal could not get a token",
            reason="AZURE_AUTH_FAILED",
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
        return Unavailable(f"{what}: {describe(exc)}", reason="AZURE_ERROR")
    return Unavailable(f"{what}: {describe(exc)}", reason="AZURE_ERROR")


__all__ = ["FORBIDDEN_CODES", "TokenError", "describe", "is_identity_error", "translate"]
