"""End to end through the real gRPC server (bucketvault.testing.server) against Azurite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.azurite_support import (
    ACCOUNT,
    ACCOUNT_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT_ID,
    Azurite,
    Tls,
    TokenEndpoint,
    sdk_service,
    tamper,
    unique,
)
from azure.storage.blob import ContainerClient, generate_container_sas

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition
from bucketvault.testing.server import start_server
from bucketvault.v1 import vault_pb2

pytestmark = pytest.mark.azurite

METHODS = ("GET", "HEAD", "PUT")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    client.upload_blob("photos/a.jpg", b"AAA")
    client.upload_blob("photos/b.jpg", b"BBB")
    yield client
    client.delete_container()


@pytest.fixture(scope="module")
def oauth_container(azurite_oauth: Azurite, tls: Tls) -> Iterator[ContainerClient]:
    client = sdk_service(azurite_oauth.account_url, connection_verify=str(tls.cert))
    created = client.create_container(unique())
    created.upload_blob("photos/a.jpg", b"AAA")
    yield created
    created.delete_container()


def _assert_refusals(urls: list[str], put_read_url: str, verify: bool | str = True) -> None:
    a, b = urls
    assert requests.get(tamper(a), timeout=10, verify=verify).status_code == 403
    assert (
        requests.get(b.split("?")[0] + "?" + a.split("?")[1], timeout=10, verify=verify).status_code
        == 403
    )
    put = requests.put(
        put_read_url,
        data=b"x",
        headers={"x-ms-blob-type": "BlockBlob"},
        timeout=10,
        verify=verify,
    )
    assert put.status_code == 403


def test_shared_key_end_to_end(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    with start_server(tmp_path) as srv:
        c = srv.client()
        cred = c.register_credential(
            "acme",
            "AZURE_SHARED_KEY",
            {
                "account_url": azurite.account_url,
                "account_name": ACCOUNT,
                "account_key": ACCOUNT_KEY,
            },
        )
        assert ACCOUNT_KEY not in str(cred)
        m = c.create_mount(
            "acme",
            name="m",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            prefix="photos/",
            max_ttl_seconds=3600,
            allowed_methods=METHODS,
        )
        urls = c.sign_urls("acme", m.mount_id, ["photos/a.jpg", "photos/b.jpg"], ttl_seconds=600)
        assert [requests.get(u.url, timeout=10).content for u in urls] == [b"AAA", b"BBB"]
        _assert_refusals([u.url for u in urls], urls[0].url)
        put = c.sign_url(
            "acme",
            m.mount_id,
            "photos/new.png",
            method="PUT",
            ttl_seconds=600,
            content_type="image/png",
        )
        assert dict(put.required_headers) == {
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "image/png",
        }
        ok = requests.put(put.url, data=b"new", headers=dict(put.required_headers), timeout=10)
        assert ok.status_code == 201
        assert container.download_blob("photos/new.png").readall() == b"new"
        check = c.check_mount("acme", m.mount_id)
        assert vault_pb2.CheckMountResponse.State.Name(check.state) == "STATE_AVAILABLE"


def test_shared_key_expired_url_end_to_end(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    clock = FrozenClock(_now() - dt.timedelta(hours=2))
    with start_server(tmp_path, clock=clock) as srv:
        c = srv.client()
        cred = c.register_credential(
            "acme",
            "AZURE_SHARED_KEY",
            {
                "account_url": azurite.account_url,
                "account_name": ACCOUNT,
                "account_key": ACCOUNT_KEY,
            },
        )
        m = c.create_mount(
            "acme",
            name="m",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            max_ttl_seconds=3600,
            allowed_methods=METHODS,
        )
        url = c.sign_url("acme", m.mount_id, "photos/a.jpg", ttl_seconds=60)
        assert requests.get(url.url, timeout=10).status_code == 403


def test_sas_end_to_end(tmp_path: Path, azurite: Azurite, container: ContainerClient) -> None:
    clock = FrozenClock(_now())
    sas_expiry = _now() + dt.timedelta(days=5)
    token = generate_container_sas(
        ACCOUNT,
        container.container_name,
        account_key=ACCOUNT_KEY,
        permission="rl",
        expiry=sas_expiry,
    )
    with start_server(tmp_path, clock=clock) as srv:
        c = srv.client()
        cred = c.register_credential(
            "acme", "AZURE_SAS", {"account_url": azurite.account_url, "sas_token": token}
        )
        assert token.split("sig=")[1] not in str(cred)
        assert cred.metadata["sas_permissions"] == "rl"
        assert any("within 14 days" in w for w in cred.warnings)
        m = c.create_mount(
            "acme",
            name="m",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            max_ttl_seconds=7 * 24 * 3600,
            allowed_methods=METHODS,
        )
        urls = c.sign_urls("acme", m.mount_id, ["photos/a.jpg", "photos/b.jpg"], ttl_seconds=600)
        assert [requests.get(u.url, timeout=10).content for u in urls] == [b"AAA", b"BBB"]
        assert requests.get(tamper(urls[0].url), timeout=10).status_code == 403
        # 600 s were asked, but the URL carries the customer's SAS and Azurite honours it
        # until se: the reported expiry is the SAS's, the one the URL really has.
        for u in urls:
            assert u.expires_at.ToDatetime(dt.UTC) == sas_expiry
            assert u.expiry_capped_by == "SAS_EXPIRY"
            (se,) = parse_qs(urlsplit(u.url).query)["se"]
            assert dt.datetime.fromisoformat(se) == sas_expiry
        long = c.sign_url("acme", m.mount_id, "photos/a.jpg", ttl_seconds=6 * 24 * 3600)
        assert long.expiry_capped_by == "SAS_EXPIRY"
        assert long.expires_at.ToDatetime(dt.UTC) == sas_expiry
        # A mount whose max TTL is shorter than the SAS refuses, and CheckMount says why...
        short = c.create_mount(
            "acme",
            name="short",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            max_ttl_seconds=3600,
        )
        with pytest.raises(FailedPrecondition) as outlives:
            c.sign_url("acme", short.mount_id, "photos/a.jpg", ttl_seconds=60)
        assert outlives.value.reason == "SAS_OUTLIVES_MOUNT_TTL"
        assert any(
            "SAS_OUTLIVES_MOUNT_TTL" in w for w in c.check_mount("acme", short.mount_id).warnings
        )
        # ... unless its owner accepts URLs that live as long as the SAS.
        accepting = c.create_mount(
            "acme",
            name="accepting",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            max_ttl_seconds=3600,
            allow_credential_lifetime=True,
        )
        assert accepting.policy.allow_credential_lifetime
        url = c.sign_url("acme", accepting.mount_id, "photos/a.jpg", ttl_seconds=60)
        assert url.expires_at.ToDatetime(dt.UTC) == sas_expiry
        assert requests.get(url.url, timeout=10).content == b"AAA"
        assert c.check_mount("acme", accepting.mount_id).warnings == []
        with pytest.raises(FailedPrecondition) as info:
            c.sign_url("acme", m.mount_id, "photos/a.jpg", method="PUT", ttl_seconds=60)
        assert info.value.reason == "SAS_PERMISSION_MISSING"
        pages = list(c.list_prefix("acme", m.mount_id, prefix="photos/", delimiter="/"))
        assert [e.key for p in pages for e in p.entries][:2] == ["photos/a.jpg", "photos/b.jpg"]
        clock.set(sas_expiry + dt.timedelta(seconds=1))
        with pytest.raises(FailedPrecondition) as expired:
            c.sign_url("acme", m.mount_id, "photos/a.jpg", ttl_seconds=60)
        assert expired.value.reason == "SAS_EXPIRED"
        assert any("expired" in w for w in c.get_credential("acme", cred.credential_id).warnings)
        check = c.check_mount("acme", m.mount_id)
        assert vault_pb2.CheckMountResponse.State.Name(check.state) == "STATE_FORBIDDEN"
        assert check.reason == "SAS_EXPIRED"


def test_service_principal_end_to_end(
    tmp_path: Path,
    azurite_oauth: Azurite,
    tls: Tls,
    token_endpoint: TokenEndpoint,
    oauth_container: ContainerClient,
) -> None:
    env = {
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": token_endpoint.authority,
        "BUCKETVAULT_AZURE_CA_BUNDLE": str(tls.cert),
    }
    verify = str(tls.cert)
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        cred = c.register_credential(
            "acme",
            "AZURE_SERVICE_PRINCIPAL",
            {
                "account_url": azurite_oauth.account_url,
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        assert CLIENT_SECRET not in str(cred)
        m = c.create_mount(
            "acme",
            name="m",
            bucket=oauth_container.container_name,
            credential_id=cred.credential_id,
            max_ttl_seconds=3600,
            allowed_methods=METHODS,
        )
        urls = c.sign_urls("acme", m.mount_id, ["photos/a.jpg", "photos/zz.jpg"], ttl_seconds=600)
        assert "skoid=" in urls[0].url
        assert requests.get(urls[0].url, timeout=10, verify=verify).content == b"AAA"
        _assert_refusals([u.url for u in urls], urls[0].url, verify)
        check = c.check_mount("acme", m.mount_id)
        assert vault_pb2.CheckMountResponse.State.Name(check.state) == "STATE_AVAILABLE"


def test_listing_2500_with_delimiter_and_resume(tmp_path: Path, azurite: Azurite) -> None:
    client = sdk_service(azurite.account_url).create_container(unique())
    names = [f"d/{i:05d}" for i in range(2500)] + ["d/sub/x", "e/y"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.upload_blob(n, b"."), names))
    try:
        with start_server(tmp_path) as srv:
            c = srv.client()
            cred = c.register_credential(
                "acme",
                "AZURE_SHARED_KEY",
                {
                    "account_url": azurite.account_url,
                    "account_name": ACCOUNT,
                    "account_key": ACCOUNT_KEY,
                },
            )
            m = c.create_mount(
                "acme",
                name="m",
                bucket=client.container_name,
                credential_id=cred.credential_id,
                prefix="d/",
                max_ttl_seconds=3600,
                allowed_methods=METHODS,
            )
            keys: list[str] = []
            prefixes: list[str] = []
            token = ""
            while True:
                page = next(
                    iter(
                        c.list_prefix(
                            "acme", m.mount_id, delimiter="/", page_size=1000, page_token=token
                        )
                    )
                )
                keys.extend(e.key for e in page.entries)
                prefixes.extend(page.common_prefixes)
                token = page.next_page_token
                if not token:
                    break
            assert keys == names[:2500]
            assert prefixes == ["d/sub/"]
            signed = next(iter(c.list_prefix("acme", m.mount_id, page_size=3, sign_ttl_seconds=60)))
            assert [requests.get(e.url, timeout=10).content for e in signed.entries] == [b"."] * 3
    finally:
        client.delete_container()
