"""The AWS provider through the real gRPC server (start_server), against moto and LocalStack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from aws.aws_support import ROLE_ARN, Peer, RecordingProxy, frozen_botocore, key_text
from botocore.config import Config
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bucketvault.clock import FrozenClock
from bucketvault.errors import BucketVaultError, InvalidArgument
from bucketvault.objectkeys import check_key
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2

TENANT = "acme"
NOW = datetime.now(UTC).replace(microsecond=0)


def admin_s3(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def mount_for(srv: RunningServer, cred_id: str, bucket: str, **kw: Any) -> str:
    m = srv.client().create_mount(
        TENANT,
        name=kw.pop("name", bucket),
        bucket=bucket,
        credential_id=cred_id,
        max_ttl_seconds=kw.pop("max_ttl_seconds", 3600),
        allowed_methods=("GET", "HEAD", "PUT"),
        **kw,
    )
    return str(m.mount_id)


# -- moto: STS parameters, single-flight, listing ---------------------------------------


@pytest.fixture(scope="module")
def moto_world(moto: Peer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    proxy = RecordingProxy(moto.url)
    env = {
        "AWS_ENDPOINT_URL_STS": proxy.url,
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
        "AWS_REGION": "us-east-1",
    }
    s3 = admin_s3(moto.url)
    s3.create_bucket(Bucket="e2e-listing")
    keys = [f"img/{i:04d}.jpg" for i in range(2000)] + [
        f"img/set{j:03d}/{i}.jpg" for j in range(250) for i in range(2)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="e2e-listing", Key=k, Body=b"x"), keys))
    with start_server(tmp_path_factory.mktemp("bv-moto"), env=env) as srv:
        yield srv, proxy
    proxy.close()


@pytest.mark.moto
def test_register_role_sends_external_id_duration_and_session_name(moto_world: Any) -> None:
    srv, proxy = moto_world
    c = srv.client()
    external_id = c.trust_policy(TENANT).external_id
    proxy.clear()
    cred = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="r")
    [sent] = proxy.actions("AssumeRole")
    assert sent["RoleArn"] == ROLE_ARN
    assert sent["ExternalId"] == external_id
    assert sent["DurationSeconds"] == "21600"
    assert sent["RoleSessionName"].startswith("bv.acme.")
    assert cred.credential_id in sent["RoleSessionName"]
    stored = c.get_credential(TENANT, cred.credential_id)
    assert stored.metadata["session_duration_seconds"] == "21600"
    assert stored.metadata["role_arn"] == ROLE_ARN
    assert list(stored.warnings) == []


@pytest.mark.moto
def test_fifty_concurrent_cold_sign_urls_make_one_assume_role(moto_world: Any) -> None:
    srv, proxy = moto_world
    c = srv.client()
    cred = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="sf")
    mount_id = mount_for(srv, cred.credential_id, "e2e-listing", name="sf", region="us-east-1")
    proxy.clear()
    start = threading.Barrier(50)
    urls: list[str] = []

    def one(i: int) -> None:
        client = srv.client()
        start.wait()
        urls.append(client.sign_url(TENANT, mount_id, f"img/{i:04d}.jpg", ttl_seconds=600).url)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(urls) == 50
    assert len(proxy.actions("AssumeRole")) == 1


@pytest.mark.moto
def test_list_prefix_2500_keys_with_delimiter_and_resume(moto_world: Any) -> None:
    srv, _ = moto_world
    c = srv.client()
    cred = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="ls")
    mount_id = mount_for(srv, cred.credential_id, "e2e-listing", name="ls", prefix="img/")
    pages = list(c.list_prefix(TENANT, mount_id, delimiter="/", page_size=1000))
    keys = [e.key for p in pages for e in p.entries]
    prefixes = [x for p in pages for x in p.common_prefixes]
    assert keys == [f"img/{i:04d}.jpg" for i in range(2000)]
    assert prefixes == [f"img/set{j:03d}/" for j in range(250)]
    assert pages[-1].next_page_token == ""
    first = pages[0]
    rest = list(c.list_prefix(TENANT, mount_id, delimiter="/", page_token=first.next_page_token))
    resumed = [e.key for e in first.entries] + [e.key for p in rest for e in p.entries]
    assert resumed == keys
    flat = [e.key for p in c.list_prefix(TENANT, mount_id, page_size=400) for e in p.entries]
    assert len(flat) == 2500 == len(set(flat)) and flat == sorted(flat)
    signed = next(iter(c.list_prefix(TENANT, mount_id, page_size=5, sign_ttl_seconds=120)))
    assert all("X-Amz-Expires=120" in e.url for e in signed.entries)
    with pytest.raises(BucketVaultError) as info:
        list(c.list_prefix(TENANT, mount_id, prefix="other/"))
    assert info.value.reason == "KEY_OUTSIDE_MOUNT"


@pytest.mark.moto
def test_check_mount_through_the_server(moto_world: Any) -> None:
    srv, _ = moto_world
    c = srv.client()
    cred = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="ck")
    ok = c.check_mount(TENANT, mount_for(srv, cred.credential_id, "e2e-listing", name="ck"))
    assert ok.state == vault_pb2.CheckMountResponse.STATE_AVAILABLE
    gone = c.check_mount(TENANT, mount_for(srv, cred.credential_id, "not-there", name="ck2"))
    assert gone.state == vault_pb2.CheckMountResponse.STATE_NOT_FOUND
    assert gone.reason == "BUCKET_NOT_FOUND"


# -- byte equality with botocore through gRPC (frozen clock) ----------------------------


@pytest.fixture(scope="module")
def frozen_world(moto: Peer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    proxy = RecordingProxy(moto.url)
    env = {
        "AWS_ENDPOINT_URL_STS": proxy.url,
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
    }
    clock = FrozenClock(NOW)
    with start_server(tmp_path_factory.mktemp("bv-frozen"), env=env, clock=clock) as srv:
        c = srv.client()
        key_doc = {"access_key_id": "AKIDCUSTOMER", "secret_access_key": "wJalr/K7+MDENG=="}
        static = c.register_credential(TENANT, "S3_ACCESS_KEY", key_doc, display_name="k")
        role = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="r")
        mounts: dict[tuple[str, str, str], str] = {}
        for kind, cred in (("key", static), ("role", role)):
            for bucket in ("my-bucket", "images.example.com", "My-Bucket"):
                for region in ("us-east-1", "eu-west-1", "cn-north-1"):
                    mounts[kind, bucket, region] = mount_for(
                        srv,
                        cred.credential_id,
                        bucket,
                        name=f"{kind}-{bucket}-{region}".replace(".", "-"),
                        region=region,
                        # Signed at the exact second asked, as botocore signs: the stable
                        # window's flooring has tests of its own (tests/core).
                        cache_stable_urls=False,
                    )
        # Sessions are per scope (bucket, prefix, methods; not region): open each bucket's
        # session now, then learn it from the STS answer it came in.
        identities: dict[tuple[str, str], tuple[str, str, str]] = {}
        for bucket in ("my-bucket", "images.example.com", "My-Bucket"):
            c.sign_url(TENANT, mounts["role", bucket, "us-east-1"], "warm", ttl_seconds=60)
            identities["role", bucket] = proxy.last_session()
            identities["key", bucket] = ("AKIDCUSTOMER", "wJalr/K7+MDENG==", "")
        yield srv, mounts, identities
    proxy.close()


@cache
def boto_s3(identity: tuple[str, str, str], region: str) -> Any:
    return boto3.Session(
        aws_access_key_id=identity[0],
        aws_secret_access_key=identity[1],
        aws_session_token=identity[2] or None,
    ).client("s3", region_name=region, config=Config(signature_version="s3v4"))


@pytest.mark.moto
@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["key", "role"]),
    bucket=st.sampled_from(["my-bucket", "images.example.com", "My-Bucket"]),
    region=st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1"]),
    key=key_text,
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
    ttl=st.integers(min_value=1, max_value=3600),
    overrides=st.sampled_from([("", ""), ("text/plain", 'attachment; filename="a b.txt"')]),
    content_type=st.sampled_from(["", "image/jpeg"]),
)
def test_server_urls_equal_botocore(
    frozen_world: Any,
    kind: str,
    bucket: str,
    region: str,
    key: str,
    method: str,
    ttl: int,
    overrides: tuple[str, str],
    content_type: str,
) -> None:
    try:
        check_key(key, "")
    except BucketVaultError:
        assume(False)
    srv, mounts, identities = frozen_world
    params: dict[str, str] = {"Bucket": bucket, "Key": key}
    rtype, disposition = overrides if method != "PUT" else ("", "")
    ctype = content_type if method == "PUT" else ""
    if rtype:
        params["ResponseContentType"] = rtype
        params["ResponseContentDisposition"] = disposition
    if ctype:
        params["ContentType"] = ctype
    signed = srv.client().sign_url(
        TENANT,
        mounts[kind, bucket, region],
        key,
        method=method,
        ttl_seconds=ttl,
        response_content_type=rtype,
        response_content_disposition=disposition,
        content_type=ctype,
    )
    operation = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}[method]
    with frozen_botocore(NOW):
        expected = boto_s3(identities[kind, bucket], region).generate_presigned_url(
            operation, Params=params, ExpiresIn=ttl
        )
    assert signed.url == expected
    assert signed.expires_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=ttl)
    assert dict(signed.required_headers) == ({"Content-Type": ctype} if ctype else {})


# -- LocalStack: the URLs the server hands out are accepted, and only as signed ---------


@pytest.fixture(scope="module")
def ls_bucket(localstack: Peer) -> str:
    s3 = admin_s3(localstack.url)
    s3.create_bucket(Bucket="e2e-signed")
    for key in ("a.txt", "dir/ü b+c=d.txt"):
        s3.put_object(Bucket="e2e-signed", Key=key, Body=f"bytes of {key}".encode())
    return "e2e-signed"


def ls_env(localstack: Peer) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": localstack.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }


@pytest.mark.localstack
@pytest.mark.parametrize("kind", ["S3_ACCESS_KEY", "AWS_ROLE"])
def test_localstack_accepts_server_urls_and_refuses_misuse(
    localstack: Peer, ls_bucket: str, tmp_path: Path, kind: str
) -> None:
    with start_server(tmp_path, env=ls_env(localstack)) as srv:
        c = srv.client()
        doc: dict[str, str] = (
            {"role_arn": ROLE_ARN}
            if kind == "AWS_ROLE"
            else {
                "access_key_id": "AKIDLS",
                "secret_access_key": "test",
                "endpoint_url": localstack.url,
            }
        )
        cred = c.register_credential(TENANT, kind, doc, display_name="ls")
        mount_id = mount_for(srv, cred.credential_id, ls_bucket)
        assert c.check_mount(TENANT, mount_id).state == vault_pb2.CheckMountResponse.STATE_AVAILABLE
        urls = c.sign_urls(TENANT, mount_id, ["a.txt", "dir/ü b+c=d.txt"], ttl_seconds=300)
        for signed in urls:
            got = requests.get(signed.url, timeout=10)
            assert got.status_code == 200 and got.content == f"bytes of {signed.key}".encode()
        url = urls[0].url
        sig = url.rsplit("=", 1)[1]
        tampered = url[: -len(sig)] + ("1" if sig[0] == "0" else "0") + sig[1:]
        assert requests.get(tampered, timeout=10).status_code == 403
        assert requests.get(url.replace("/a.txt?", "/b.txt?"), timeout=10).status_code == 403
        assert requests.put(url, data=b"x", timeout=10).status_code == 403
        put = c.sign_url(TENANT, mount_id, "up/new.bin", method="PUT", content_type="image/png")
        assert dict(put.required_headers) == {"Content-Type": "image/png"}
        sent = requests.put(put.url, data=b"new", headers=dict(put.required_headers), timeout=10)
        assert sent.status_code == 200
        page = next(iter(c.list_prefix(TENANT, mount_id, prefix="up/", sign_ttl_seconds=60)))
        [entry] = page.entries
        assert requests.get(entry.url, timeout=10).content == b"new"


@pytest.mark.localstack
def test_localstack_refuses_expired_server_urls(
    localstack: Peer, ls_bucket: str, tmp_path: Path
) -> None:
    past = FrozenClock(datetime.now(UTC) - timedelta(hours=3))
    with start_server(tmp_path, env=ls_env(localstack), clock=past) as srv:
        c = srv.client()
        doc = {
            "access_key_id": "AKIDLS",
            "secret_access_key": "test",
            "endpoint_url": localstack.url,
        }
        cred = c.register_credential(TENANT, "S3_ACCESS_KEY", doc, display_name="old")
        mount_id = mount_for(srv, cred.credential_id, ls_bucket)
        signed = c.sign_url(TENANT, mount_id, "a.txt", ttl_seconds=3600)
        assert signed.expires_at.ToDatetime(tzinfo=UTC) < datetime.now(UTC)
        assert requests.get(signed.url, timeout=10).status_code == 403


@pytest.mark.moto
def test_page_tokens_are_ours_page_by_page_and_sign_by_uri(moto_world: Any) -> None:
    srv, _ = moto_world
    c = srv.client()
    cred = c.register_credential(TENANT, "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="pt")
    # The longest prefix on the bucket (the other tests' mounts there hold img/ and all).
    mount_id = mount_for(srv, cred.credential_id, "e2e-listing", name="pt", prefix="img/0")
    # One call per page, each resuming from the previous page's token, to the end.
    keys: list[str] = []
    token, calls = "", 0
    while True:
        page = next(iter(c.list_prefix(TENANT, mount_id, page_size=300, page_token=token)))
        calls += 1
        keys += [e.key for e in page.entries]
        token = page.next_page_token
        if not token:
            break
        assert token.startswith("v1.")
    assert keys == [f"img/{i:04d}.jpg" for i in range(1000)] and calls == 4
    first = next(iter(c.list_prefix(TENANT, mount_id, page_size=300)))
    s3_token = first.next_page_token.split(".")[2]
    for forged, kw in (
        (s3_token, {}),  # what S3 itself would take: never passed through
        ("v1.x.y.z", {}),
        (first.next_page_token, {"prefix": "img/00"}),
        (first.next_page_token, {"delimiter": "/"}),
    ):
        with pytest.raises(BucketVaultError) as info:
            list(c.list_prefix(TENANT, mount_id, page_size=300, page_token=forged, **kw))
        assert isinstance(info.value, InvalidArgument)
        assert info.value.reason == "INVALID_PAGE_TOKEN"
    # Sign by URI: the https and s3:// spellings resolve to the mount; moto accepts the URL.
    for uri in (
        "s3://e2e-listing/img/0001.jpg",
        "https://e2e-listing.s3.us-east-1.amazonaws.com/img/0001.jpg",
        "https://s3.amazonaws.com/e2e-listing/img/0001.jpg",
    ):
        signed = c.sign_url(TENANT, uri=uri, ttl_seconds=120)
        assert signed.key == "img/0001.jpg"
        assert signed.mount_id == mount_id
        assert requests.get(signed.url, timeout=10).status_code == 200
