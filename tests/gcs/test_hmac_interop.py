"""HMAC mounts list through the S3-interoperable XML API; moto server stands in for GCS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from gcs.gcsutil import (
    HMAC_ACCESS_ID,
    HMAC_SECRET,
    free_port,
    make_mount,
    make_provider,
    open_handle,
)
from gcs.v4verify import verify

from bucketvault.clock import FrozenClock
from bucketvault.errors import NotFound
from bucketvault.models import CredentialKind, ListRequest, Method, MountState
from bucketvault.providers.base import CredentialHandle
from bucketvault.testing.providers import UrlRequest

pytestmark = pytest.mark.moto

BUCKET = "hmac-bucket"
KEYS = [f"img/{i:04d}.jpg" for i in range(1234)] + [f"img/sub-{k}/a.jpg" for k in range(3)]
NOW = datetime(2026, 2, 2, 2, 2, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def bucket(moto_s3: str) -> str:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    s3.create_bucket(Bucket=BUCKET)
    for key in KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    s3.close()
    return BUCKET


@pytest.fixture
def handle() -> Iterator[CredentialHandle]:
    provider = make_provider(FrozenClock(NOW))
    h = open_handle(
        provider, CredentialKind("GCS_HMAC"), {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
    )
    yield h
    h.close()


def test_hmac_listing_with_delimiter_and_pages(
    handle: CredentialHandle, moto_s3: str, bucket: str
) -> None:
    mount = make_mount(bucket, moto_s3, prefix="img/")
    request = ListRequest(prefix="img/", delimiter="/", page_size=500, page_token="")
    pages = list(handle.list(mount, request, None))
    keys = [e.key for p in pages for e in p.entries]
    prefixes = [c for p in pages for c in p.common_prefixes]
    assert keys == [k for k in KEYS if "sub-" not in k]
    assert prefixes == [f"img/sub-{k}/" for k in range(3)]
    assert len(pages) == 3
    assert all(
        e.size == len(e.key) and e.etag and e.last_modified for p in pages for e in p.entries
    )


def test_hmac_listing_resumes_from_a_page_token(
    handle: CredentialHandle, moto_s3: str, bucket: str
) -> None:
    mount = make_mount(bucket, moto_s3)
    token, seen = "", []
    while True:
        request = ListRequest(prefix="img/", delimiter="", page_size=400, page_token=token)
        page = next(iter(handle.list(mount, request, None)))
        seen.extend(e.key for e in page.entries)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(KEYS)


def test_hmac_listing_signs_entries(handle: CredentialHandle, moto_s3: str, bucket: str) -> None:
    mount = make_mount(bucket, moto_s3)
    request = ListRequest(prefix="img/sub-", delimiter="", page_size=10, page_token="")
    [page] = list(handle.list(mount, request, UrlRequest(Method.GET, 900)))
    assert [e.key for e in page.entries] == [f"img/sub-{k}/a.jpg" for k in range(3)]
    for e in page.entries:
        got = verify(e.url, method="GET", now=NOW, signer=HMAC_ACCESS_ID, hmac_secret=HMAC_SECRET)
        assert got.object_name == e.key


def test_hmac_check_mount(handle: CredentialHandle, moto_s3: str, bucket: str) -> None:
    assert handle.check(make_mount(bucket, moto_s3)).state is MountState.AVAILABLE
    missing = handle.check(make_mount("absent-bucket", moto_s3))
    assert missing.state is MountState.NOT_FOUND
    assert missing.reason == "BUCKET_NOT_FOUND"
    unreachable = handle.check(make_mount(bucket, f"http://127.0.0.1:{free_port()}"))
    assert unreachable.state is MountState.MISCONFIGURED
    assert unreachable.reason == "ENDPOINT_UNREACHABLE"
    assert HMAC_SECRET not in unreachable.detail


def test_hmac_listing_missing_bucket_is_not_found(handle: CredentialHandle, moto_s3: str) -> None:
    request = ListRequest(prefix="", delimiter="", page_size=10, page_token="")
    with pytest.raises(NotFound) as info:
        list(handle.list(make_mount("absent-bucket", moto_s3), request, None))
    assert info.value.reason == "BUCKET_NOT_FOUND"
