"""Our presigner against botocore's generate_presigned_url, byte for byte (clock frozen)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws.aws_support import frozen_botocore, key_text
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault.providers.aws.endpoints import aws_target, custom_target
from bucketvault.providers.aws.sigv4 import (
    BatchPresigner,
    PresignParams,
    SigningIdentity,
    canonical_request,
    derive_signing_key,
    signature,
    string_to_sign,
)

SIGNED_AT = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-east-1", "cn-north-1", "us-gov-west-1"]
BUCKETS = ["my-bucket", "images.example.com", "My-Bucket", "ab", "1.2.3.4", "b_u", "a--b"]


@cache
def boto_client(identity: SigningIdentity, region: str, endpoint: str | None) -> Any:
    session = boto3.Session(
        aws_access_key_id=identity.access_key_id,
        aws_secret_access_key=identity.secret_access_key,
        aws_session_token=identity.session_token or None,
    )
    s3: dict[str, str] = {"addressing_style": "path"} if endpoint else {}
    return session.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3=s3),
    )


def ours(
    identity: SigningIdentity,
    region: str,
    bucket: str,
    key: str,
    method: str,
    expires: int,
    endpoint: str | None = None,
    query: tuple[tuple[str, str], ...] = (),
    headers: dict[str, str] | None = None,
) -> str:
    target = custom_target(endpoint, bucket, region) if endpoint else aws_target(bucket, region)
    params = PresignParams(method, expires, SIGNED_AT, query, headers or {})
    signing_key = derive_signing_key(identity.secret_access_key, "20260314", region, "s3")
    return BatchPresigner(target, identity, params, signing_key).url(key)


identities = st.sampled_from(
    [
        SigningIdentity("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        SigningIdentity("ASIAEXAMPLE", "c2VjcmV0/+=", "FwoGZXIvYXdzE//token+with/slash=="),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    identity=identities,
    region=st.sampled_from(REGIONS),
    bucket=st.sampled_from(BUCKETS),
    key=key_text,
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
    expires=st.integers(min_value=1, max_value=604800),
    response_type=st.sampled_from(["", "text/plain", "image/png; charset=x"]),
    disposition=st.sampled_from(["", 'attachment; filename="a b.jpg"', "inline"]),
    content_type=st.sampled_from(["", "image/jpeg", "text/plain;  charset=utf-8"]),
)
def test_aws_urls_equal_botocore(
    identity: SigningIdentity,
    region: str,
    bucket: str,
    key: str,
    method: str,
    expires: int,
    response_type: str,
    disposition: str,
    content_type: str,
) -> None:
    boto_params: dict[str, str] = {"Bucket": bucket, "Key": key}
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    operation = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}[method]
    if method == "PUT":
        if content_type:
            boto_params["ContentType"] = content_type
            headers["Content-Type"] = content_type
    else:
        if response_type:
            boto_params["ResponseContentType"] = response_type
            query.append(("response-content-type", response_type))
        if disposition:
            boto_params["ResponseContentDisposition"] = disposition
            query.append(("response-content-disposition", disposition))
    client = boto_client(identity, region, None)
    with frozen_botocore(SIGNED_AT):
        expected = client.generate_presigned_url(operation, Params=boto_params, ExpiresIn=expires)
    got = ours(identity, region, bucket, key, method, expires, None, tuple(query), headers)
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(
    identity=identities,
    key=key_text,
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
    endpoint=st.sampled_from(
        ["http://127.0.0.1:9000", "https://minio.example.com", "https://r2.example.com:443/base/"]
    ),
    region=st.sampled_from(["us-east-1", "auto", "eu-west-1"]),
)
def test_path_style_urls_equal_botocore(
    identity: SigningIdentity, key: str, method: str, endpoint: str, region: str
) -> None:
    operation = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}[method]
    client = boto_client(identity, region, endpoint)
    with frozen_botocore(SIGNED_AT):
        expected = client.generate_presigned_url(
            operation, Params={"Bucket": "photos", "Key": key}, ExpiresIn=900
        )
    assert ours(identity, region, "photos", key, method, 900, endpoint) == expected


def test_stages_match_aws_documented_example() -> None:
    """AWS's published presigned-URL example (S3 API reference, sigv4-query-string-auth)."""
    identity = SigningIdentity("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    )
    request = canonical_request(
        "GET", "/test.txt", query, {"host": "examplebucket.s3.amazonaws.com"}
    )
    to_sign = string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", request)
    key = derive_signing_key(identity.secret_access_key, "20130524", "us-east-1", "s3")
    assert to_sign.endswith("3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04")
    assert (
        signature(key, to_sign)
        == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    fast = BatchPresigner(
        aws_target("examplebucket", "us-east-1"),
        identity,
        PresignParams("GET", 86400, datetime(2013, 5, 24, tzinfo=UTC)),
        key,
    ).url("test.txt")
    assert fast.endswith(
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
