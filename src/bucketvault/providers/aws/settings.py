"""The AWS provider's configuration, read once from the environment mapping it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_REGION = "us-east-1"


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
        )


__all__ = ["DEFAULT_REGION", "AwsSettings"]
