"""GCS errors at the provider's boundary: HTTP statuses and interop (S3) error codes.

Messages name the bucket and the principal only: a GCS or token-endpoint error body is
not ours to relay (it can echo the request).
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions
import google.auth.exceptions
import requests
import urllib3.exceptions

from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

# The RetryInfo delay for a 429 from GCS (its JSON API sends no Retry-After).
RETRY_AFTER_SECONDS = 1.0

_KEY_REJECTED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSecurity",
        "AuthorizationHeaderMalformed",
    }
)


@dataclass(frozen=True)
class ListTarget:
    """Where to list and on whose behalf (for error messages only)."""

    endpoint: str
    bucket: str
    principal: str
    # The mount's prefix: what a downscoped listing token is bounded to.
    prefix: str = ""


def http_error(status: int, target: ListTarget, *, what: str) -> BucketVaultError:
    """An HTTP status from GCS as the service's error, naming bucket and principal only."""
    if status == 403:
        return PermissionDenied(
            f"{target.principal} lacks {what} on bucket {target.bucket}", reason="BUCKET_FORBIDDEN"
        )
    if status == 401:
        return FailedPrecondition(
            f"GCS did not accept the credentials of {target.principal}",
            reason="GCS_UNAUTHENTICATED",
        )
    if status == 404:
        return NotFound(f"bucket {target.bucket} does not exist", reason="BUCKET_NOT_FOUND")
    if status == 400:
        return InvalidArgument(
            f"GCS rejected the listing request on bucket {target.bucket}", reason="GCS_BAD_REQUEST"
        )
    if status == 429:
        return ResourceExhausted(
            f"GCS is throttling {what} on bucket {target.bucket} (429): retry after the delay",
            reason="GCS_THROTTLED",
            retry_after=RETRY_AFTER_SECONDS,
        )
    return Unavailable(
        f"GCS answered {status} when listing bucket {target.bucket}", reason="GCS_UNAVAILABLE"
    )


_TIMEOUTS = (
    requests.Timeout,
    urllib3.exceptions.TimeoutError,
    TimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)


def _timed_out(exc: BaseException) -> bool:
    """A timeout anywhere in the chain: requests' own, or one under urllib3's retries
    (which requests re-raises as a plain ConnectionError around MaxRetryError)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # urllib3's NewConnectionError subclasses its ConnectTimeoutError: a refused
        # connection is not a timeout.
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            continue
        if isinstance(current, _TIMEOUTS):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason is not None:
            stack.append(current.reason)
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        if current.__cause__ is not None:
            stack.append(current.__cause__)
    return False


def transport_error(exc: BaseException, target: ListTarget) -> BucketVaultError:
    """No HTTP answer from GCS (after the bounded retries): a stall or a dropped connection."""
    if _timed_out(exc):
        return Unavailable(
            f"GCS at {target.endpoint} did not answer in time (BUCKETVAULT_GCS_TIMEOUT_SECONDS, "
            "each of BUCKETVAULT_GCS_MAX_ATTEMPTS attempts)",
            reason="GCS_TIMEOUT",
        )
    return Unavailable(f"GCS at {target.endpoint} is unreachable", reason="ENDPOINT_UNREACHABLE")


def token_error(exc: BaseException, principal: str) -> BucketVaultError:
    """A failed grant at a service account's token_uri, its body never repeated."""
    if isinstance(exc, google.auth.exceptions.RefreshError):
        # google-auth marks 5xx / temporarily_unavailable answers retryable (after its retries).
        if getattr(exc, "retryable", False):
            return Unavailable(
                f"the token endpoint failed for {principal} (after google-auth's retries)",
                reason="GCS_TOKEN_UNAVAILABLE",
            )
        # The endpoint answered and refused the key (deleted, disabled, wrong audience).
        return FailedPrecondition(
            f"the token endpoint refused the key of {principal}", reason="GCS_TOKEN_REFUSED"
        )
    if _timed_out(exc):
        return Unavailable(
            f"the token endpoint for {principal} did not answer in time "
            "(BUCKETVAULT_GCS_TOKEN_TIMEOUT_SECONDS)",
            reason="GCS_TOKEN_TIMEOUT",
        )
    return Unavailable(
        f"the token endpoint for {principal} is unreachable", reason="GCS_TOKEN_UNAVAILABLE"
    )


def interop_error(exc: botocore.exceptions.ClientError, target: ListTarget) -> BucketVaultError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _KEY_REJECTED:
        return FailedPrecondition(
            f"GCS rejected the HMAC key {target.principal}", reason="GCS_HMAC_KEY_REJECTED"
        )
    if code == "NoSuchBucket":
        status = 404
    elif code == "AccessDenied":
        status = 403
    return http_error(status, target, what="storage.objects.list")


__all__ = ["ListTarget", "http_error", "interop_error", "token_error", "transport_error"]
