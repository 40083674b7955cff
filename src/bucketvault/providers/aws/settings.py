"""The AWS provider's configuration, read once from the environment mapping it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from botocore.config import Config

from bucketvault.config import env_int, env_seconds

DEFAULT_REGION = "us-east-1"
# One STS call: connecting, then waiting for the answer (a stalled STS costs this much).
STS_CONNECT_TIMEOUT_SECONDS = 3.0
STS_READ_TIMEOUT_SECONDS = 5.0
# One AssumeRole with its retries: no retry starts that could not end inside it.
STS_BUDGET_SECONDS = 8.0
# One S3 call (ListObjectsV2, HeadBucket): a stalled S3 costs attempts x read timeout,
# so both stay small enough that a listing fails well inside a caller's deadline.
S3_CONNECT_TIMEOUT_SECONDS = 3.0
S3_READ_TIMEOUT_SECONDS = 10.0
# botocore's standard retry mode (exponential back-off with full jitter); attempts
# include the first one.
S3_MAX_ATTEMPTS = 3


def _get(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


@dataclass(frozen=True)
class AwsSettings:
    """Service identity, endpoints and trust-policy principal for the AWS provider."""

    region: str = DEFAULT_REGION
    # Explicit endpoints (emulators, VPC endpoints); "" = the SDK's own resolution.
    sts_endpoint: str = ""
    s3_endpoint: str = ""
    # The principal customers' trust policies name; "" = ask STS GetCallerIdentity.
    service_principal_arn: str = ""
    profile: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    sts_connect_timeout_seconds: float = STS_CONNECT_TIMEOUT_SECONDS
    sts_read_timeout_seconds: float = STS_READ_TIMEOUT_SECONDS
    sts_budget_seconds: float = STS_BUDGET_SECONDS
    s3_connect_timeout_seconds: float = S3_CONNECT_TIMEOUT_SECONDS
    s3_read_timeout_seconds: float = S3_READ_TIMEOUT_SECONDS
    s3_max_attempts: int = S3_MAX_ATTEMPTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        """Parse the AWS conventions (AWS_ENDPOINT_URL_STS / _S3 / AWS_ENDPOINT_URL ...)."""
        return cls(
            region=_get(env, "AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_REGION,
            sts_endpoint=_get(env, "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL").rstrip("/"),
            s3_endpoint=_get(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL").rstrip("/"),
            service_principal_arn=_get(env, "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN"),
            profile=_get(env, "AWS_PROFILE"),
            access_key_id=_get(env, "AWS_ACCESS_KEY_ID"),
            secret_access_key=_get(env, "AWS_SECRET_ACCESS_KEY"),
            session_token=_get(env, "AWS_SESSION_TOKEN"),
            sts_connect_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_AWS_STS_CONNECT_TIMEOUT_SECONDS", STS_CONNECT_TIMEOUT_SECONDS
            ),
            sts_read_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS", STS_READ_TIMEOUT_SECONDS
            ),
            sts_budget_seconds=env_seconds(
                env, "BUCKETVAULT_AWS_STS_BUDGET_SECONDS", STS_BUDGET_SECONDS
            ),
            s3_connect_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_AWS_S3_CONNECT_TIMEOUT_SECONDS", S3_CONNECT_TIMEOUT_SECONDS
            ),
            s3_read_timeout_seconds=env_seconds(
                env, "BUCKETVAULT_AWS_S3_TIMEOUT_SECONDS", S3_READ_TIMEOUT_SECONDS
            ),
            s3_max_attempts=env_int(env, "BUCKETVAULT_AWS_S3_MAX_ATTEMPTS", S3_MAX_ATTEMPTS, 1, 10),
        )

    def s3_config(self) -> Config:
        """botocore Config keywords for S3 calls: bounded timeouts, bounded jittered retries."""
        # total_max_attempts counts the first attempt; botocore's max_attempts counts
        # retries only (3 meant 4 calls, each a full read timeout on a stalled S3).
        return Config(
            retries={"total_max_attempts": self.s3_max_attempts, "mode": "standard"},
            connect_timeout=self.s3_connect_timeout_seconds,
            read_timeout=self.s3_read_timeout_seconds,
        )


__all__ = [
    "DEFAULT_REGION",
    "S3_CONNECT_TIMEOUT_SECONDS",
    "S3_MAX_ATTEMPTS",
    "S3_READ_TIMEOUT_SECONDS",
    "STS_BUDGET_SECONDS",
    "STS_CONNECT_TIMEOUT_SECONDS",
    "STS_READ_TIMEOUT_SECONDS",
    "AwsSettings",
]
