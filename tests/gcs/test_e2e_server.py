"""GCS through the real gRPC server: registration, SignURL(s), ListPrefix, CheckMount."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import google.cloud.storage._signing as gcs_signing
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CLIENT_EMAIL,
    DIRECT,
    HMAC_ACCESS_ID,
    HMAC_SECRET,
    ODD_KEYS,
    TokenEndpoint,
    sa_info,
)
from gcs.v4verify import Rejected, verify
from google.cloud import storage
from google.oauth2 import service_account
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault.client import BucketVaultClient
from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument
from bucketvault.objectkeys import check_key
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2

pytestmark = [pytest.mark.gcs, pytest.mark.moto]

NOW = datetime(2026, 7, 4, 9, 30, 15, tzinfo=UTC)
TENANT = "acme"
MAX_TTL = 7 * 86400


@dataclass
class World:
    srv: RunningServer
    client: BucketVaultClient
    sa_mount: str  # default Google endpoint
    emu_mount: str  # fake-gcs-server, path-style
    hmac_mount: str  # moto server (S3 interoperability)
    sdk_client: storage.Client
    sdk_credentials: Any
    emulator: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: RSAPrivateKey,
    token_server: TokenEndpoint,
    fake_gcs: str,
    bucket: str,
    moto_s3: str,
) -> Iterator[World]:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    s3.create_bucket(Bucket="e2e-hmac")
    for i in range(30):
        s3.put_object(Bucket="e2e-hmac", Key=f"p/{i:03d}", Body=b"x")
    s3.close()

    env = {"BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST": token_server.url}
    sdk_credentials = service_account.Credentials.from_service_account_info(sa_info(rsa_key))
    with (
        start_server(tmp_path_factory.mktemp("srv"), env=env, clock=FrozenClock(NOW)) as srv,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setattr(gcs_signing, "_NOW", lambda tz=None: NOW.astimezone(tz))
        c = srv.client()
        sa = c.register_credential(
            TENANT, "GCS_SERVICE_ACCOUNT", sa_info(rsa_key, token_server.url), display_name="sa"
        )
        hm = c.register_credential(
            TENANT, "GCS_HMAC", {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
        )
        methods = ("GET", "HEAD", "PUT")
        sa_mount = c.create_mount(
            TENANT,
            name="google",
            bucket="bucket",
            credential_id=sa.credential_id,
            max_ttl_seconds=MAX_TTL,
            allowed_methods=methods,
            # Signed at the exact second asked, as the SDK signs (tests/core test the window).
            cache_stable_urls=False,
        )
        emu_mount = c.create_mount(
            TENANT,
            name="emu",
            bucket=bucket,
            credential_id=sa.credential_id,
            endpoint=fake_gcs,
            max_ttl_seconds=3600,
            allowed_methods=methods,
            cache_stable_urls=False,
        )
        hmac_mount = c.create_mount(
            TENANT,
            name="hmac",
            bucket="e2e-hmac",
            credential_id=hm.credential_id,
            endpoint=moto_s3,
            max_ttl_seconds=3600,
            allowed_methods=methods,
        )
        yield World(
            srv,
            c,
            sa_mount.mount_id,
            emu_mount.mount_id,
            hmac_mount.mount_id,
            storage.Client(project="bv-test", credentials=sdk_credentials),
            sdk_credentials,
            fake_gcs,
        )


def _valid(key: str) -> bool:
    try:
        check_key(key, "")
    except InvalidArgument:
        return False
    return True


names = (
    st.lists(
        st.sampled_from(["+", "%", "~", "//", " ", "é", "日本", "😀", "a", "b/c", "%2F", "?&="])
        | st.text(min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    )
    .map("".join)
    .filter(_valid)
)


@settings(max_examples=60, deadline=None)
@given(
    key=names,
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
    ttl=st.integers(1, MAX_TTL),
    response_type=st.sampled_from(["", "image/png"]),
    disposition=st.sampled_from(["", 'attachment; filename="ü b.png"']),
)
def test_sign_url_is_byte_identical_to_google_cloud_storage(
    world: World, key: str, method: str, ttl: int, response_type: str, disposition: str
) -> None:
    content_type = "image/jpeg" if method == "PUT" else ""
    if method == "PUT":  # the core allows response overrides on GET and HEAD only
        response_type = disposition = ""
    ours = world.client.sign_url(
        TENANT,
        world.sa_mount,
        key,
        method=method,
        ttl_seconds=ttl,
        response_content_type=response_type,
        response_content_disposition=disposition,
        content_type=content_type,
    )
    theirs = (
        world.sdk_client.bucket("bucket")
        .blob(key)
        .generate_signed_url(
            version="v4",
            expiration=timedelta(seconds=ttl),
            method=method,
            credentials=world.sdk_credentials,
            response_type=response_type or None,
            response_disposition=disposition or None,
            content_type=content_type or None,
        )
    )
    assert ours.url == theirs
    assert ours.expires_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=ttl)
    assert dict(ours.required_headers) == ({"Content-Type": content_type} if content_type else {})


def test_sign_urls_batch_of_1000_verifies(world: World, rsa_key: RSAPrivateKey) -> None:
    keys = [f"photos/{i:04d} ü+.jpg" for i in range(1000)]
    urls = world.client.sign_urls(TENANT, world.sa_mount, keys, method="GET", ttl_seconds=600)
    assert [u.key for u in urls] == keys
    public = rsa_key.public_key()
    for u in urls[::50]:
        got = verify(u.url, method="GET", now=NOW, signer=CLIENT_EMAIL, public_key=public)
        assert got.object_name == u.key
    with pytest.raises(Rejected):
        verify(urls[0].url, method="PUT", now=NOW, signer=CLIENT_EMAIL, public_key=public)


def test_hmac_urls_from_the_server_verify(world: World) -> None:
    s = world.client.sign_url(
        TENANT, world.hmac_mount, "p/001", method="PUT", ttl_seconds=900, content_type="text/plain"
    )
    assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256" in s.url
    verify(
        s.url,
        method="PUT",
        now=NOW,
        signer=HMAC_ACCESS_ID,
        hmac_secret=HMAC_SECRET,
        headers=dict(s.required_headers),
    )
    with pytest.raises(Rejected):
        verify(
            s.url.replace("p/001", "p/002"),
            method="PUT",
            now=NOW,
            signer=HMAC_ACCESS_ID,
            hmac_secret=HMAC_SECRET,
            headers=dict(s.required_headers),
        )
    with pytest.raises(Rejected, match="expired"):
        verify(
            s.url,
            method="PUT",
            now=NOW + timedelta(seconds=900),
            signer=HMAC_ACCESS_ID,
            hmac_secret=HMAC_SECRET,
            headers=dict(s.required_headers),
        )


def test_ttl_is_bounded_by_the_mount(world: World) -> None:
    s = world.client.sign_url(TENANT, world.emu_mount, "k", ttl_seconds=3600)
    assert "X-Goog-Expires=3600&" in s.url
    assert s.expires_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(seconds=3600)
    with pytest.raises(InvalidArgument) as info:
        world.client.sign_url(TENANT, world.emu_mount, "k", ttl_seconds=3601)
    assert info.value.reason == "TTL_TOO_LONG"


def test_list_prefix_2500_with_delimiter_and_resume(world: World) -> None:
    pages = list(
        world.client.list_prefix(
            TENANT, world.emu_mount, prefix="big/", delimiter="/", page_size=1000
        )
    )
    keys = [e.key for p in pages for e in p.entries]
    assert keys == DIRECT
    assert [c for p in pages for c in p.common_prefixes] == [f"big/sub-{k}/" for k in range(5)]

    seen: list[str] = []
    token = ""
    calls = 0
    while True:
        stream = world.client.list_prefix(
            TENANT, world.emu_mount, prefix="big/", delimiter="/", page_size=600, page_token=token
        )
        page = next(iter(stream))
        calls += 1
        seen.extend(e.key for e in page.entries)
        token = page.next_page_token
        if not token:
            break
    assert seen == DIRECT
    assert calls >= 5


def test_signed_get_from_the_server_fetches_bytes_from_the_emulator(
    world: World, rsa_key: RSAPrivateKey
) -> None:
    for key in ODD_KEYS:
        s = world.client.sign_url(TENANT, world.emu_mount, key, ttl_seconds=300)
        verify(s.url, method="GET", now=NOW, signer=CLIENT_EMAIL, public_key=rsa_key.public_key())
        r = requests.get(s.url, timeout=10)
        assert r.status_code == 200
        assert r.content == b"bytes of " + key.encode()
    pages = list(
        world.client.list_prefix(TENANT, world.emu_mount, prefix="odd/", sign_ttl_seconds=60)
    )
    entries = [e for p in pages for e in p.entries]
    assert sorted(e.key for e in entries) == sorted(ODD_KEYS)
    for e in entries:
        assert requests.get(e.url, timeout=10).content == b"bytes of " + e.key.encode()


def test_hmac_list_prefix_through_the_server(world: World) -> None:
    pages = list(world.client.list_prefix(TENANT, world.hmac_mount, prefix="p/", page_size=7))
    assert [e.key for p in pages for e in p.entries] == [f"p/{i:03d}" for i in range(30)]
    assert len(pages) == 5


def test_check_mount_through_the_server(world: World, fake_gcs: str) -> None:
    ok = world.client.check_mount(TENANT, world.emu_mount)
    assert ok.state == vault_pb2.CheckMountResponse.STATE_AVAILABLE
    assert world.client.check_mount(TENANT, world.hmac_mount).state == (
        vault_pb2.CheckMountResponse.STATE_AVAILABLE
    )
    cred = world.client.get_credential(
        TENANT, world.client.get_mount(TENANT, world.emu_mount).credential_id
    )
    missing = world.client.create_mount(
        TENANT,
        name="missing",
        bucket="no-such-bucket",
        credential_id=cred.credential_id,
        endpoint=fake_gcs,
        max_ttl_seconds=60,
        allowed_methods=("GET",),
    )
    result = world.client.check_mount(TENANT, missing.mount_id)
    assert result.state == vault_pb2.CheckMountResponse.STATE_NOT_FOUND
    assert result.reason == "BUCKET_NOT_FOUND"


def test_registration_refuses_bad_keys_without_echo(world: World, rsa_key: RSAPrivateKey) -> None:
    info = sa_info(rsa_key)
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidArgument) as bad:
        world.client.register_credential(TENANT, "GCS_SERVICE_ACCOUNT", info)
    assert "TOPSECRET" not in str(bad.value)
    assert "TOPSECRET" not in repr(bad.value)

    other = sa_info(rsa_key, "https://evil.example/token")
    with pytest.raises(InvalidArgument) as denied:
        world.client.register_credential(TENANT, "GCS_SERVICE_ACCOUNT", other)
    assert denied.value.reason == "TOKEN_URI_NOT_ALLOWED"


def test_credential_readback_holds_no_secret(world: World, rsa_key: RSAPrivateKey) -> None:
    for cred in world.client.list_credentials(TENANT):
        text = str(cred)
        assert "PRIVATE KEY" not in text
        assert HMAC_SECRET not in text
