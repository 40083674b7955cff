"""AWS errors at the provider's boundary: botocore's exceptions -> bucketvault's.

STS's and S3's messages name roles, buckets and limits only, never key material; the
translations here keep their codes and drop anything else they might echo.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from bucketvault.models import CheckResult, MountState
from bucketvault.providers.aws.scope import SessionPolicyTooLarge
from bucketvault.providers.s3listing import client_error_code

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "IDPCommunicationError",
    "ServiceUnavailable",
    "InternalFailure",
}
_WRONG_REGION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
}
# S3's answers to "slow down" (503 SlowDown is the documented one; 429 from some
# S3-compatible stores and VPC endpoints).
_S3_THROTTLING = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "503",
    "429",
}
# The RetryInfo delay when S3 sends no Retry-After: about botocore's own first back-off.
S3_RETRY_AFTER_SECONDS = 1.0
_FORBIDDEN = {"AccessDenied", "AllAccessDisabled", "AccountProblem"}
_BAD_KEY = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


class AssumeRoleDenied(FailedPrecondition):
    """STS refused: the role's trust policy does not name us, or the ExternalId differs."""

    default_reason = "ASSUME_ROLE_DENIED"


class AttributionDenied(AssumeRoleDenied):
    """The trust policy lets us assume the role, but not with session tags or SourceIdentity."""

    default_reason = "ASSUME_ROLE_ATTRIBUTION_DENIED"


class SessionDurationRefused(FailedPrecondition):
    """The role (or role chaining) does not allow the session length asked for."""

    default_reason = "SESSION_DURATION_REFUSED"

    def __init__(self, message: str, *, role_chaining: bool) -> None:
        super().__init__(message)
        self.role_chaining = role_chaining


class StsThrottled(Unavailable):
    default_reason = "STS_THROTTLED"


class StsUnavailable(Unavailable):
    default_reason = "STS_UNAVAILABLE"


class S3Throttled(ResourceExhausted):
    """S3 still answered SlowDown after botocore's own jittered retries."""

    default_reason = "S3_THROTTLED"


def _retry_after(exc: ClientError) -> float:
    raw = header(exc, "retry-after").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return S3_RETRY_AFTER_SECONDS
    # An absurd header must not park callers for hours.
    return min(max(seconds, 0.1), 60.0)


def transport_error(exc: Exception, bucket: str) -> BucketVaultError:
    """S3 not answering (after botocore's retries): a timeout or a lost connection."""
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return Unavailable(
            f"S3 did not answer in time when listing bucket {bucket!r} ({type(exc).__name__})",
            reason="S3_TIMEOUT",
        )
    return Unavailable(
        f"S3 could not be reached to list bucket {bucket!r} ({type(exc).__name__})",
        reason="S3_UNAVAILABLE",
    )


def no_identity() -> FailedPrecondition:
    return FailedPrecondition(
        "bucketvault has no AWS identity of its own: give the service AWS credentials "
        "(environment, web identity or instance profile) and set "
        "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN",
        reason="AWS_NOT_CONFIGURED",
    )


def sts_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def sts_error(exc: ClientError, role_arn: str) -> Exception:
    code = sts_code(exc)
    # AWS error messages name the role and limits only, never key material.
    message = str(exc.response.get("Error", {}).get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "AccessDenied" and ("sts:TagSession" in message or "SetSourceIdentity" in message):
        return AttributionDenied(
            f"STS let bucketvault assume {role_arn} only without attribution: add "
            '"sts:TagSession" and "sts:SetSourceIdentity" to the Action of the trust policy '
            'statement that allows "sts:AssumeRole" (see GetAwsTrustPolicy)'
        )
    if code == "AccessDenied":
        return AssumeRoleDenied(
            f"STS refused to let bucketvault assume {role_arn}: the role's trust policy does not "
            "trust bucketvault's service principal, or its sts:ExternalId condition does not "
            "match this tenant's ExternalId (see GetAwsTrustPolicy)"
        )
    if code == "ValidationError" and "DurationSeconds" in message:
        chaining = "chaining" in message.lower()
        return SessionDurationRefused(
            f"STS refused the session length for {role_arn}: {message}", role_chaining=chaining
        )
    if code in ("PackedPolicyTooLarge", "PackedPolicyTooLargeException"):
        return SessionPolicyTooLarge(
            f"STS refused the mount's session policy and tags for {role_arn} as too large "
            f"({message}): use a shorter prefix",
            field="prefix",
        )
    if code in _THROTTLING or status in (429, 500, 502, 503, 504):
        return StsThrottled(f"STS is throttling or failing AssumeRole ({code})")
    if code in ("RegionDisabledException", "ExpiredTokenException", "InvalidClientTokenId"):
        return StsUnavailable(
            f"bucketvault's own AWS identity cannot call STS ({code}): check the service's "
            "credentials and STS region"
        )
    return FailedPrecondition(
        f"STS refused AssumeRole for {role_arn} ({code}): {message}", reason="ASSUME_ROLE_FAILED"
    )


def header(exc: ClientError, name: str) -> str:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get(name, ""))


def list_error(exc: ClientError, bucket: str) -> BucketVaultError:
    code = client_error_code(exc)
    if code in ("NoSuchBucket", "404"):
        return NotFound(f"bucket {bucket!r} does not exist", reason="BUCKET_NOT_FOUND")
    if code in _FORBIDDEN or code in _BAD_KEY or code == "403":
        return PermissionDenied(
            f"the credential may not list bucket {bucket!r} ({code})", reason="BUCKET_FORBIDDEN"
        )
    if code in ("InvalidArgument", "InvalidToken") and "continuation" in str(exc).lower():
        return FailedPrecondition("the page_token is not valid", reason="INVALID_PAGE_TOKEN")
    if code in _WRONG_REGION or code == "301":
        return FailedPrecondition(
            f"bucket {bucket!r} is in another region than the mount says ({code})",
            reason="WRONG_REGION",
        )
    if code in _S3_THROTTLING:
        return S3Throttled(
            f"S3 is throttling listings of bucket {bucket!r} ({code}): retry after the delay",
            retry_after=_retry_after(exc),
        )
    return Unavailable(f"S3 refused to list bucket {bucket!r} ({code})", reason="S3_ERROR")


def check_failure(exc: ClientError, bucket: str, region: str) -> CheckResult:
    code = client_error_code(exc)
    actual = header(exc, "x-amz-bucket-region")
    if code in _WRONG_REGION or code == "301" or (actual and actual != region):
        return CheckResult(
            MountState.MISCONFIGURED,
            "WRONG_REGION",
            f"bucket {bucket!r} is in region {actual or 'another region'}, not "
            f"{region}: set the mount's region to {actual or 'the bucket region'}",
        )
    if code in ("NoSuchBucket", "404"):
        return CheckResult(
            MountState.NOT_FOUND,
            "BUCKET_NOT_FOUND",
            f"bucket {bucket!r} does not exist (or not at this endpoint): check the mount's bucket",
        )
    if code in _BAD_KEY:
        return CheckResult(
            MountState.FORBIDDEN,
            "INVALID_CREDENTIALS",
            f"S3 rejected the credential's key ({code}): the key may be deleted, disabled or "
            "mistyped; register a working credential and rebind the mount",
        )
    if code in _FORBIDDEN or code == "403":
        return CheckResult(
            MountState.FORBIDDEN,
            "ACCESS_DENIED",
            f"the credential may not read bucket {bucket!r}: grant s3:ListBucket and "
            "s3:GetObject on it (bucket policy or the role's permissions)",
        )
    if code in _S3_THROTTLING:
        # The mount may be fine: S3 asked us to slow down, so nothing was learnt.
        return CheckResult(
            MountState.MISCONFIGURED,
            "S3_THROTTLED",
            f"S3 throttled the check of bucket {bucket!r} ({code}): check again later",
        )
    return CheckResult(
        MountState.MISCONFIGURED,
        "S3_ERROR",
        f"S3 answered {code} for bucket {bucket!r}",
    )


__all__ = [
    "AssumeRoleDenied",
    "AttributionDenied",
    "S3Throttled",
    "SessionDurationRefused",
    "StsThrottled",
    "StsUnavailable",
    "check_failure",
    "header",
    "list_error",
    "no_identity",
    "sts_code",
    "sts_error",
    "transport_error",
]
