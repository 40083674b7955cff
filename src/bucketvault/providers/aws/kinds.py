"""The AWS kinds: AWS_ROLE (assumed with STS) and S3_ACCESS_KEY (S3-compatible stores)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bucketvault.models import CredentialKind
from bucketvault.providers.kinds import (
    PRINTABLE_ID,
    Field,
    KindSpec,
    ParseContext,
    SecretFields,
    bad_field,
)

AWS_ROLE = CredentialKind("AWS_ROLE")
S3_ACCESS_KEY = CredentialKind("S3_ACCESS_KEY")

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")


@dataclass(frozen=True)
class RoleSecret:
    """An IAM role to assume; nothing of it is secret, the ExternalId is the tenant's."""

    role_arn: str
    account_id: str
    external_id: str = field(repr=False)

    def metadata(self) -> Mapping[str, str]:
        """Role ARN and account."""
        return {"role_arn": self.role_arn, "account_id": self.account_id}


@dataclass(frozen=True)
class AccessKeySecret:
    """A long-lived key pair for an S3-compatible store."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    endpoint_url: str = ""
    region: str = ""

    def metadata(self) -> Mapping[str, str]:
        """Key id, endpoint and region."""
        return {
            "access_key_id": self.access_key_id,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
        }


def parse_role(f: SecretFields, context: ParseContext) -> RoleSecret:
    """Check the ARN; an ExternalId, if given, must be the one issued for the tenant."""
    external_id = context.external_id()
    given = f["external_id"]
    if given and given != external_id:
        # Confused-deputy rule: only the ExternalId we issued for this tenant is ever used.
        raise bad_field(
            "external_id", "is not the ExternalId issued for this tenant", "EXTERNAL_ID_MISMATCH"
        )
    arn = f["role_arn"]
    match = _ROLE_ARN.match(arn)
    return RoleSecret(arn, match.group(1) if match else "", external_id)


def parse_access_key(f: SecretFields, context: ParseContext) -> AccessKeySecret:
    """A key pair; its endpoint must pass the URL policy (checked again at every open)."""
    endpoint = f["endpoint_url"]
    if endpoint:
        endpoint = context.url_policy.check_endpoint(endpoint, field="secret.endpoint_url")
    return AccessKeySecret(f["access_key_id"], f["secret_access_key"], endpoint, f["region"])


KINDS: Mapping[CredentialKind, KindSpec] = {
    AWS_ROLE: KindSpec(
        AWS_ROLE,
        "An IAM role bucketvault assumes with STS (ExternalId from GetAwsTrustPolicy)",
        (
            Field("role_arn", "the role's ARN", max_len=2048, pattern=_ROLE_ARN),
            Field(
                "external_id",
                "the tenant's ExternalId; optional, must match if given",
                required=False,
                max_len=1224,
            ),
        ),
        parse_role,
    ),
    S3_ACCESS_KEY: KindSpec(
        S3_ACCESS_KEY,
        "An access key for S3 or an S3-compatible store (MinIO, R2, Wasabi)",
        (
            Field("access_key_id", "the access key id", pattern=PRINTABLE_ID),
            Field("secret_access_key", "the secret access key", secret=True, max_len=256),
            Field("endpoint_url", "the store's https endpoint", required=False, max_len=2048),
            Field("region", "the signing region", required=False, pattern=_REGION),
        ),
        parse_access_key,
    ),
}

__all__ = [
    "AWS_ROLE",
    "KINDS",
    "S3_ACCESS_KEY",
    "AccessKeySecret",
    "RoleSecret",
    "parse_access_key",
    "parse_role",
]
