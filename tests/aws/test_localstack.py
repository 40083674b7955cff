"""LocalStack verifies SigV4 presigned URLs: ours must be accepted, and only as signed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from aws.aws_support import ROLE_ARN, Peer, credential, mount, secret

from bucketvault.clock import FrozenClock, SystemClock
from bucketvault.models import CredentialKind, Method, MountState, RegistrationContext
from bucketvault.providers.aws import build
from bucketvault.providers.aws.provider import AwsHandle
from bucketvault.testing.providers import Ruled, UrlRequest
from bucketvault.urlpolicy import UrlPolicy

pytestmark = pytest.mark.localstack

POLICY = UrlPolicy(allow_insecure=True)
BUCKET = "signed-urls"
KEYS = ["plain.txt", "with space/+=%~/é 日本.txt", "a//double/slash", "~tilde=eq+plus"]


def s3_admin(localstack: Peer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=localstack.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="module")
def bucket(localstack: Peer) -> str:
    s3 = s3_admin(localstack)
    s3.create_bucket(Bucket=BUCKET)
    for key in KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"body of {key}".encode())
    return BUCKET


def key_handle(localstack: Peer, clock: Any = None, secret_key: str = "test") -> AwsHandle:
    provider = Ruled(build({}, clock or SystemClock(), POLICY), clock or SystemClock())
    return provider.open(
        credential(CredentialKind("S3_ACCESS_KEY")),
        secret(
            CredentialKind("S3_ACCESS_KEY"),
            access_key_id="AKIDLOCALSTACK",
            secret_access_key=secret_key,
            endpoint_url=localstack.url,
            region="us-east-1",
        ),
    )


def role_handle(localstack: Peer) -> AwsHandle:
    env = {
        "AWS_ENDPOINT_URL": localstack.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    provider = Ruled(build(env, SystemClock(), POLICY), SystemClock())
    context = RegistrationContext("acme", "cred-ls", CredentialKind("AWS_ROLE"))
    doc = secret(CredentialKind("AWS_ROLE"), role_arn=ROLE_ARN)
    prep = provider.prepare(context, doc)
    assert prep.metadata["session_duration_seconds"] == "21600"
    return provider.open(credential(CredentialKind("AWS_ROLE"), dict(prep.metadata)), doc)


def sign_one(handle: AwsHandle, key: str, method: Method = Method.GET, **kw: Any) -> Any:
    [signed] = handle.sign(mount(BUCKET), [key], UrlRequest(method, 600, **kw))
    return signed


@pytest.mark.parametrize("kind", ["s3_access_key", "aws_role"])
def test_every_signed_url_fetches_the_right_bytes(localstack: Peer, bucket: str, kind: str) -> None:
    handle = key_handle(localstack) if kind == "s3_access_key" else role_handle(localstack)
    signed = handle.sign(mount(bucket), KEYS, UrlRequest(Method.GET, 600))
    for key, s in zip(KEYS, signed, strict=True):
        assert s.key == key
        response = requests.get(s.url, timeout=10)
        assert response.status_code == 200, (key, response.text[:300])
        assert response.content == f"body of {key}".encode()
    head = sign_one(handle, KEYS[1], Method.HEAD)
    assert requests.head(head.url, timeout=10).status_code == 200
    if kind == "aws_role":
        assert "X-Amz-Security-Token=" in signed[0].url


@pytest.mark.parametrize("kind", ["s3_access_key", "aws_role"])
def test_tampering_is_refused(localstack: Peer, bucket: str, kind: str) -> None:
    handle = key_handle(localstack) if kind == "s3_access_key" else role_handle(localstack)
    url = sign_one(handle, "plain.txt").url
    assert requests.get(url, timeout=10).status_code == 200
    sig = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url)
    assert sig is not None
    flipped = ("0" if sig.group(1)[0] != "0" else "1") + sig.group(1)[1:]
    assert requests.get(url.replace(sig.group(1), flipped), timeout=10).status_code == 403
    other_key = url.replace(
        "/plain.txt?", "/with%20space/%2B%3D%25~/%C3%A9%20%E6%97%A5%E6%9C%AC.txt?"
    )
    assert requests.get(other_key, timeout=10).status_code == 403
    assert requests.put(url, data=b"overwrite", timeout=10).status_code == 403
    longer = url.replace("X-Amz-Expires=600", "X-Amz-Expires=6000")
    assert requests.get(longer, timeout=10).status_code == 403
    assert s3_get(localstack, "plain.txt") == b"body of plain.txt"


def s3_get(localstack: Peer, key: str) -> bytes:
    body: bytes = s3_admin(localstack).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_expired_url_is_refused(localstack: Peer, bucket: str) -> None:
    past = FrozenClock(datetime.now(UTC) - timedelta(hours=2))
    url = sign_one(key_handle(localstack, clock=past), "plain.txt").url
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert "expired" in response.text.lower()


def test_wrong_secret_is_refused(localstack: Peer, bucket: str) -> None:
    url = sign_one(key_handle(localstack, secret_key="not-the-secret"), "plain.txt").url
    assert requests.get(url, timeout=10).status_code == 403


def test_put_with_content_type_and_response_overrides(localstack: Peer, bucket: str) -> None:
    handle = key_handle(localstack)
    put = sign_one(handle, "uploads/new image.png", Method.PUT, content_type="image/png")
    assert put.required_headers == {"Content-Type": "image/png"}
    assert "X-Amz-SignedHeaders=content-type%3Bhost" in put.url
    wrong = requests.put(put.url, data=b"png", headers={"Content-Type": "text/plain"}, timeout=10)
    assert wrong.status_code == 403
    ok = requests.put(put.url, data=b"png-bytes", headers=dict(put.required_headers), timeout=10)
    assert ok.status_code == 200, ok.text[:300]
    get = sign_one(
        handle,
        "uploads/new image.png",
        response_content_type="application/octet-stream",
        response_content_disposition='attachment; filename="x y.png"',
    )
    fetched = requests.get(get.url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == b"png-bytes"
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="x y.png"'


def test_check_mount_available(localstack: Peer, bucket: str) -> None:
    result = key_handle(localstack).check(mount(bucket, prefix="with space/"))
    assert (result.state, result.reason) == (MountState.AVAILABLE, "OK")
