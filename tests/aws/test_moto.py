"""The provider against moto server: STS parameters as sent, single-flight, listing, checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from aws.aws_support import ROLE_ARN, Peer, RecordingProxy, credential, free_port, mount, secret

from bucketvault.clock import SystemClock
from bucketvault.errors import PermissionDenied
from bucketvault.models import (
    CredentialKind,
    ListRequest,
    Method,
    MountState,
    RegistrationContext,
)
from bucketvault.providers.aws import build
from bucketvault.providers.aws.provider import AwsHandle
from bucketvault.testing.providers import Ruled, UrlRequest
from bucketvault.urlpolicy import UrlPolicy

pytestmark = pytest.mark.moto

POLICY = UrlPolicy(allow_insecure=True)


@pytest.fixture(scope="module")
def sts_proxy(moto: Peer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(moto.url)
    yield proxy
    proxy.close()


@pytest.fixture
def env(moto: Peer, sts_proxy: RecordingProxy) -> dict[str, str]:
    sts_proxy.clear()
    return {
        "AWS_ENDPOINT_URL_STS": sts_proxy.url,
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
        "AWS_REGION": "us-east-1",
    }


def admin_s3(moto: Peer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
    )


@pytest.fixture(scope="module")
def bucket_2500(moto: Peer) -> str:
    s3 = admin_s3(moto)
    s3.create_bucket(Bucket="listing")
    keys = [f"photos/{i:04d}.jpg" for i in range(2000)]
    keys += [f"photos/album{j:03d}/{i}.jpg" for j in range(250) for i in range(2)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="listing", Key=k, Body=b"x"), keys))
    s3.put_object(Bucket="listing", Key="other/z.jpg", Body=b"x")
    return "listing"


def role_handle(provider: Ruled, cid: str = "cred-1") -> AwsHandle:
    return provider.open(
        credential(CredentialKind("AWS_ROLE"), {"external_id": "ext-acme"}, cid=cid),
        secret(CredentialKind("AWS_ROLE"), role_arn=ROLE_ARN),
    )


def test_prepare_assumes_role_with_external_id_duration_and_session_name(
    env: dict[str, str], sts_proxy: RecordingProxy
) -> None:
    provider = Ruled(build(env, SystemClock(), POLICY), SystemClock(), external_id="ext-acme-42")
    context = RegistrationContext("acme corp", "cred-7f3a", CredentialKind("AWS_ROLE"))
    prep = provider.prepare(context, secret(CredentialKind("AWS_ROLE"), role_arn=ROLE_ARN))
    assert prep.metadata["session_duration_seconds"] == "21600"
    assert prep.warnings == ()
    [sent] = sts_proxy.actions("AssumeRole")
    assert sent["RoleArn"] == ROLE_ARN
    assert sent["ExternalId"] == "ext-acme-42"
    assert sent["DurationSeconds"] == "21600"
    assert sent["RoleSessionName"] == "bv.acme-corp.cred-7f3a"


def test_service_principal_from_config_or_get_caller_identity(env: dict[str, str]) -> None:
    configured = build(
        {**env, "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::1:role/bv"},
        SystemClock(),
        POLICY,
    )
    assert configured.service_principal_arn() == "arn:aws:iam::1:role/bv"
    asked = build(env, SystemClock(), POLICY).service_principal_arn()
    assert asked.startswith("arn:aws:") and "123456789012" in asked


def test_fifty_concurrent_cold_signs_make_one_assume_role(
    env: dict[str, str], sts_proxy: RecordingProxy
) -> None:
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()), cid="cred-flight")
    m = mount("photos", region="us-east-1")
    start = threading.Barrier(50)
    urls: list[str] = []

    def one(i: int) -> None:
        start.wait()
        urls.extend(s.url for s in handle.sign(m, [f"k{i}"], UrlRequest(Method.GET, 600)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(urls) == 50
    assert len(sts_proxy.actions("AssumeRole")) == 1
    assert all("X-Amz-Security-Token=" in u for u in urls)


def test_listing_2500_keys_with_delimiter_and_resume(env: dict[str, str], bucket_2500: str) -> None:
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()))
    m = mount(bucket_2500, prefix="photos/")
    request = ListRequest(prefix="photos/", delimiter="/", page_size=700, page_token="")
    pages = list(handle.list(m, request, None))
    keys = [e.key for p in pages for e in p.entries]
    prefixes = [c for p in pages for c in p.common_prefixes]
    assert keys == [f"photos/{i:04d}.jpg" for i in range(2000)]
    assert prefixes == [f"photos/album{j:03d}/" for j in range(250)]
    assert all(p.next_page_token for p in pages[:-1]) and pages[-1].next_page_token == ""
    assert all(len(p.entries) + len(p.common_prefixes) <= 700 for p in pages)
    # Resume: stop after the first page, continue from its token in a new call.
    first = next(iter(handle.list(m, request, None)))
    resumed = list(handle.list(m, ListRequest("photos/", "/", 1000, first.next_page_token), None))
    again = [e.key for e in first.entries] + [e.key for p in resumed for e in p.entries]
    assert again == keys
    assert len(set(again)) == 2000
    # Without delimiter every key is listed, once, in order.
    flat = [
        e.key for p in handle.list(m, ListRequest("photos/", "", 1000, ""), None) for e in p.entries
    ]
    assert len(flat) == 2500 and flat == sorted(flat) and len(set(flat)) == 2500


def test_listing_signs_each_entry_and_is_lazy(env: dict[str, str], bucket_2500: str) -> None:
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()))
    m = mount(bucket_2500, prefix="photos/")
    pages = handle.list(m, ListRequest("photos/", "", 10, ""), UrlRequest(Method.GET, 300))
    page = next(iter(pages))
    assert len(page.entries) == 10
    for entry in page.entries:
        assert entry.url.startswith(f"{env['AWS_ENDPOINT_URL_S3']}/listing/{entry.key}?")
        assert "X-Amz-Expires=300" in entry.url
    assert page.entries[0].size == 1 and page.entries[0].etag


def test_check_mount_states(env: dict[str, str], bucket_2500: str) -> None:
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()))
    ok = handle.check(mount(bucket_2500))
    assert ok.state is MountState.AVAILABLE, ok
    missing = handle.check(mount("no-such-bucket-here", mount_id="m-2"))
    assert (missing.state, missing.reason) == (MountState.NOT_FOUND, "BUCKET_NOT_FOUND")
    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = handle.check(mount(bucket_2500, endpoint=dead, mount_id="m-3"))
    assert unreachable.state is MountState.MISCONFIGURED
    assert unreachable.reason == "ENDPOINT_UNREACHABLE"
    assert dead in unreachable.detail


def test_listing_a_missing_bucket_is_an_error(env: dict[str, str]) -> None:
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()))
    m = mount("never-created", region="us-east-1")
    with pytest.raises(Exception) as info:
        list(handle.list(m, ListRequest("", "", 10, ""), None))
    assert getattr(info.value, "reason", "") == "BUCKET_NOT_FOUND"
    assert not isinstance(info.value, PermissionDenied)


def test_region_is_resolved_once_per_mount(moto: Peer, env: dict[str, str]) -> None:
    s3 = admin_s3(moto)
    s3.create_bucket(
        Bucket="in-frankfurt", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    handle = role_handle(Ruled(build(env, SystemClock(), POLICY), SystemClock()))
    m = mount("in-frankfurt", mount_id="m-fra")
    [signed] = handle.sign(m, ["a"], UrlRequest(Method.GET, 60))
    assert "%2Feu-central-1%2Fs3%2F" in signed.url
    s3.delete_bucket(Bucket="in-frankfurt")
    # Cached: no second lookup (the bucket is gone, a lookup would now fail).
    [signed] = handle.sign(m, ["b"], UrlRequest(Method.GET, 60))
    assert "%2Feu-central-1%2Fs3%2F" in signed.url
