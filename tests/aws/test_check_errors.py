"""CheckMount's mapping of S3 refusals (scripted S3 answers, real botocore parsing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws.aws_support import ScriptedS3, credential, mount, s3_error, secret

from bucketvault.clock import SystemClock
from bucketvault.models import CredentialKind, MountState
from bucketvault.providers.aws import build
from bucketvault.providers.aws.provider import AwsHandle
from bucketvault.testing.providers import Ruled
from bucketvault.urlpolicy import UrlPolicy

XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def s3() -> Iterator[ScriptedS3]:
    server = ScriptedS3(
        {
            "forbidden": (403, XML, s3_error("AccessDenied", "Access Denied")),
            "badkey": (403, XML, s3_error("InvalidAccessKeyId", "no such key")),
            "elsewhere": (
                301,
                {**XML, "x-amz-bucket-region": "eu-west-1"},
                s3_error("PermanentRedirect", "use the eu-west-1 endpoint"),
            ),
            "missing": (404, XML, s3_error("NoSuchBucket", "The bucket does not exist")),
        }
    )
    yield server
    server.close()


def handle(s3: ScriptedS3) -> AwsHandle:
    return Ruled(build({}, SystemClock(), UrlPolicy(allow_insecure=True)), SystemClock()).open(
        credential(CredentialKind("S3_ACCESS_KEY")),
        secret(
            CredentialKind("S3_ACCESS_KEY"),
            access_key_id="AKID",
            secret_access_key="hush-hush",
            endpoint_url=s3.url,
        ),
    )


@pytest.mark.parametrize(
    ("bucket", "region", "state", "reason", "hint"),
    [
        ("forbidden", "us-east-1", MountState.FORBIDDEN, "ACCESS_DENIED", "s3:ListBucket"),
        ("badkey", "us-east-1", MountState.FORBIDDEN, "INVALID_CREDENTIALS", "rebind"),
        ("elsewhere", "us-east-1", MountState.MISCONFIGURED, "WRONG_REGION", "eu-west-1"),
        ("missing", "us-east-1", MountState.NOT_FOUND, "BUCKET_NOT_FOUND", "missing"),
        ("missing", "", MountState.NOT_FOUND, "BUCKET_NOT_FOUND", "missing"),
    ],
)
def test_check_maps_s3_answers(
    s3: ScriptedS3, bucket: str, region: str, state: MountState, reason: str, hint: str
) -> None:
    result = handle(s3).check(mount(bucket, region=region))
    assert (result.state, result.reason) == (state, reason), result
    assert hint in result.detail
    assert "hush-hush" not in result.detail
