"""GCS errors at the provider's boundary: HTTP statuses and interop (S3) error codes.

Messages name the bucket and the principal only: a GCS or token-endpoint error body is
not ours to relay (it can echo the request).
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

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


__all__ = ["ListTarget", "http_error", "interop_error"]
