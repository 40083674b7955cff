"""AZURE_SERVICE_PRINCIPAL: user-delegation SAS over HTTPS Azurite with --oauth basic."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from azure.azurite_support import (
    Azurite,
    Tls,
    TokenEndpoint,
    context,
    make_credential,
    make_mount,
    options,
    provider,
    sdk_service,
    sp_secret,
    tamper,
    unique,
)
from azure.storage.blob import ContainerClient

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition
from bucketvault.models import CredentialKind, Method, MountState
from bucketvault.providers.azure.handles import ServicePrincipalHandle

pytestmark = pytest.mark.azurite

KIND = CredentialKind("AZURE_SERVICE_PRINCIPAL")


def env(token_endpoint: TokenEndpoint, tls: Tls) -> dict[str, str]:
    return {
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": token_endpoint.authority,
        "BUCKETVAULT_AZURE_CA_BUNDLE": str(tls.cert),
    }


@pytest.fixture(scope="module")
def container(azurite_oauth: Azurite, tls: Tls) -> Iterator[ContainerClient]:
    client = sdk_service(azurite_oauth.account_url, connection_verify=str(tls.cert))
    created = client.create_container(unique())
    created.upload_blob("x/secret plan.txt", b"plan")
    yield created
    created.delete_container()


def test_user_delegation_sas_end_to_end(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint, container: ContainerClient
) -> None:
    p = provider(env(token_endpoint, tls))
    prepared = p.prepare(context(KIND), sp_secret(azurite_oauth.account_url))
    assert prepared.metadata["principal_object_id"]
    handle = p.open(make_credential(KIND), sp_secret(azurite_oauth.account_url))
    mount = make_mount(container.container_name)
    (url,) = handle.sign(mount, ["x/secret plan.txt"], options())
    assert "skoid=" in url.url and "sr=b" in url.url
    verify = str(tls.cert)
    assert requests.get(url.url, timeout=10, verify=verify).content == b"plan"
    assert requests.get(tamper(url.url), timeout=10, verify=verify).status_code == 403
    put = requests.put(
        url.url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10, verify=verify
    )
    assert put.status_code == 403
    (up,) = handle.sign(mount, ["x/upload.bin"], options(Method.PUT))
    done = requests.put(
        up.url, data=b"up", headers=dict(up.required_headers), timeout=10, verify=verify
    )
    assert done.status_code == 201
    assert container.download_blob("x/upload.bin").readall() == b"up"
    checked = handle.check(mount)
    assert checked.state is MountState.AVAILABLE
    assert checked.scope.startswith("per-object SAS minted for each URL (sp=r or cw on one blob")
    assert "user-delegation SAS" in checked.scope
    handle.close()


def test_expired_user_delegation_url_is_refused(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint, container: ContainerClient
) -> None:
    # The key is fetched "an hour ago" (still valid), the URL lived one minute back then.
    clock = FrozenClock(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    handle = provider(env(token_endpoint, tls), clock).open(
        make_credential(KIND), sp_secret(azurite_oauth.account_url)
    )
    (url,) = handle.sign(
        make_mount(container.container_name), ["x/secret plan.txt"], options(ttl=60)
    )
    response = requests.get(url.url, timeout=10, verify=str(tls.cert))
    assert response.status_code == 403


def test_delegation_key_is_cached_single_flight_and_refreshed(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint, container: ContainerClient
) -> None:
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    settings = {
        **env(token_endpoint, tls),
        "BUCKETVAULT_AZURE_DELEGATION_KEY_LIFETIME": "7200",
        "BUCKETVAULT_AZURE_DELEGATION_KEY_REFRESH_AHEAD": "1800",
    }
    handle = provider(settings, clock).open(
        make_credential(KIND), sp_secret(azurite_oauth.account_url)
    )
    assert isinstance(handle.inner, ServicePrincipalHandle)
    mount = make_mount(container.container_name)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.extend(u.url for u in handle.sign(mount, ["x/secret plan.txt"], options()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache = handle.delegation_keys(mount)
    assert len(results) == 8
    assert cache.fetches == 1
    # The URL cannot outlive the key: a 3-hour URL is cut at the key's expiry.
    (long,) = handle.sign(mount, ["x/secret plan.txt"], options(ttl=3 * 3600))
    assert long.expiry_capped_by == "SESSION_EXPIRY"
    assert long.expires_at <= clock.now() + dt.timedelta(seconds=7200)
    # Inside the refresh-ahead window the next caller refreshes the key.
    first_expiry = cache.get().expires_at
    clock.advance(dt.timedelta(seconds=7200 - 1700))
    (fresh,) = handle.sign(mount, ["x/secret plan.txt"], options())
    assert fresh.expiry_capped_by == ""
    # The refresh runs in the background while the old key serves: wait for it (bounded).
    deadline = time.monotonic() + 10
    while cache.get().expires_at <= first_expiry and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.get().expires_at > first_expiry
    assert cache.fetches == 2
    # (Not fetched: the frozen clock is now ahead of Azurite's, so the new key is "future".)


def test_wrong_client_secret_is_refused_at_registration(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    p = provider(env(token_endpoint, tls))
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), sp_secret(azurite_oauth.account_url, secret="wrong-secret"))
    assert info.value.reason == "AZURE_AUTH_FAILED"
    assert "wrong-secret" not in str(info.value)
    handle = p.open(
        make_credential(KIND), sp_secret(azurite_oauth.account_url, secret="wrong-secret")
    )
    result = handle.check(make_mount("any"))
    assert (result.state, result.reason) == (MountState.MISCONFIGURED, "AZURE_AUTH_FAILED")
    assert "wrong-secret" not in repr(handle)
