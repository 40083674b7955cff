"""One error hierarchy for the whole service.

Every error knows its gRPC status code and a stable machine-readable ``reason``
(sent as ``google.rpc.ErrorInfo.reason``). Messages are written for the caller and
must never contain secret material: build them from identifiers, never from input
values of secret fields.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

ERROR_DOMAIN = "bucketvault.dev"


class BucketVaultError(Exception):
    """Root of every error the service raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        # The request field at fault, reported as a google.rpc.BadRequest violation.
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class InvalidArgument(BucketVaultError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class Unauthenticated(BucketVaultError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(BucketVaultError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(BucketVaultError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(BucketVaultError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(BucketVaultError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(BucketVaultError):
    """A compare-and-swap lost: re-read and retry."""

    code = grpc.StatusCode.ABORTED
    default_reason = "VERSION_MISMATCH"


class Unimplemented(BucketVaultError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "PROVIDER_UNAVAILABLE"


class Unavailable(BucketVaultError):
    """A dependency (cloud API, store, audit sink) is down; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class ResourceExhausted(BucketVaultError):
    """A quota or limit was hit. retry_after (seconds), when known, is sent to the caller
    as google.rpc.RetryInfo.retry_delay."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata, field=field)
        self.retry_after = retry_after


class DeadlineExceeded(BucketVaultError):
    """The call's deadline passed before an answer came (the SDK raises it for the
    caller's own timeout); whether a write took effect is unknown: re-read to find out."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class CryptoError(BucketVaultError):
    """Decryption or unsealing failed. Deliberately vague: no oracle for attackers."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "UNSEAL_FAILED"


class Internal(BucketVaultError):
    code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


__all__ = [
    "ERROR_DOMAIN",
    "Aborted",
    "AlreadyExists",
    "BucketVaultError",
    "CryptoError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]
