"""AZURE_SAS: the customer's container or account SAS, through the provider and Azurite."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from azure.azurite_support import (
    ACCOUNT,
    ACCOUNT_KEY,
    Azurite,
    context,
    make_credential,
    make_mount,
    options,
    provider,
    sas_secret,
    sdk_service,
    tamper,
    unique,
)
from azure.storage.blob import (
    ContainerClient,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind, ListRequest, Method, Mount, MountState

pytestmark = pytest.mark.azurite

KIND = CredentialKind("AZURE_SAS")


def sas_mount(bucket: str) -> Mount:
    """A mount that accepts URLs living as long as the customer's (long) test SAS."""
    return make_mount(bucket, allow_credential_lifetime=True)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def container_sas(name: str, permission: str, expiry: dt.datetime) -> str:
    return generate_container_sas(
        ACCOUNT, name, account_key=ACCOUNT_KEY, permission=permission, expiry=expiry
    )


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    client.upload_blob("p/one.txt", b"one")
    client.upload_blob("p/two.txt", b"two")
    yield client
    client.delete_container()


def test_get_urls_fetch_bytes_and_refusals(azurite: Azurite, container: ContainerClient) -> None:
    token = container_sas(container.container_name, "rl", now() + dt.timedelta(days=30))
    handle = provider().open(make_credential(KIND), sas_secret(azurite.account_url, token))
    mount = sas_mount(container.container_name)
    one, two = handle.sign(mount, ["p/one.txt", "p/two.txt"], options())
    assert requests.get(one.url, timeout=10).content == b"one"
    assert requests.get(two.url, timeout=10).content == b"two"
    assert one.url.endswith("?" + token)
    assert requests.get(tamper(one.url), timeout=10).status_code == 403
    # A read-only SAS does not let a PUT through even if someone builds the URL by hand.
    put = requests.put(one.url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403
    with pytest.raises(FailedPrecondition) as info:
        handle.sign(mount, ["p/one.txt"], options(Method.PUT))
    assert info.value.reason == "SAS_PERMISSION_MISSING"


def test_expired_customer_sas_is_refused_by_azurite(
    azurite: Azurite, container: ContainerClient
) -> None:
    past = now() - dt.timedelta(hours=1)
    token = container_sas(container.container_name, "r", past)
    # Sign "before" the SAS expired, then fetch now: Azurite refuses it.
    clock = FrozenClock(past - dt.timedelta(minutes=10))
    handle = provider(clock=clock).open(
        make_credential(KIND), sas_secret(azurite.account_url, token)
    )
    (url,) = handle.sign(sas_mount(container.container_name), ["p/one.txt"], options())
    assert requests.get(url.url, timeout=10).status_code == 403


def test_put_with_write_sas(azurite: Azurite, container: ContainerClient) -> None:
    token = container_sas(container.container_name, "rcwl", now() + dt.timedelta(days=30))
    handle = provider().open(make_credential(KIND), sas_secret(azurite.account_url, token))
    (url,) = handle.sign(sas_mount(container.container_name), ["p/new.bin"], options(Method.PUT))
    assert url.required_headers["x-ms-blob-type"] == "BlockBlob"
    response = requests.put(url.url, data=b"new", headers=dict(url.required_headers), timeout=10)
    assert response.status_code == 201
    assert container.download_blob("p/new.bin").readall() == b"new"


def test_expiry_is_the_sas_expiry(azurite: Azurite) -> None:
    clock = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    sas_expiry = dt.datetime(2026, 6, 1, 0, 5, tzinfo=dt.UTC)
    token = container_sas("c", "rl", sas_expiry)
    handle = provider(clock=clock).open(
        make_credential(KIND), sas_secret(azurite.account_url, token)
    )
    # The URL carries the customer's SAS: it works until the SAS ends, and says so,
    # whether a longer or a shorter life was asked for.
    for asked in (options(ttl=3600, capped_by="MOUNT_MAX_TTL"), options(ttl=60)):
        (url,) = handle.sign(make_mount("c"), ["k"], asked)
        assert (url.expires_at, url.expiry_capped_by) == (sas_expiry, "SAS_EXPIRY")
    clock.advance(dt.timedelta(minutes=5))
    with pytest.raises(FailedPrecondition) as info:
        handle.sign(make_mount("c"), ["k"], options())
    assert info.value.reason == "SAS_EXPIRED"
    expired = handle.check(make_mount("c"))
    assert (expired.state, expired.reason) == (MountState.FORBIDDEN, "SAS_EXPIRED")


def test_overrides_cannot_be_added_to_a_customer_sas(azurite: Azurite) -> None:
    token = container_sas("c", "r", now() + dt.timedelta(days=1))
    handle = provider().open(make_credential(KIND), sas_secret(azurite.account_url, token))
    with pytest.raises(FailedPrecondition) as info:
        handle.sign(make_mount("c"), ["k"], options(response_content_type="text/plain"))
    assert info.value.reason == "SAS_OVERRIDES_UNSUPPORTED"


def test_prepare_checks_permissions_and_expiry(azurite: Azurite) -> None:
    p = provider()
    url = azurite.account_url
    later = now() + dt.timedelta(days=30)
    assert (
        p.prepare(context(KIND), sas_secret(url, container_sas("c", "rwl", later))).warnings == ()
    )
    no_list = p.prepare(context(KIND), sas_secret(url, container_sas("c", "rw", later)))
    assert any("list" in w for w in no_list.warnings)
    # A SAS that cannot read is malformed for a mount: the one parser says so up front.
    with pytest.raises(InvalidArgument) as bad_sas:
        p.prepare(context(KIND), sas_secret(url, container_sas("c", "wl", later)))
    assert bad_sas.value.reason == "SAS_PERMISSION_MISSING"
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(
            context(KIND), sas_secret(url, container_sas("c", "rl", now() - dt.timedelta(days=1)))
        )
    assert info.value.reason == "SAS_EXPIRED"
    with pytest.raises(InvalidArgument) as bad:
        p.prepare(context(KIND), sas_secret(url, "sv=2020-01-01&sp=r"))
    assert bad.value.reason == "INVALID_SAS"


def test_warnings_follow_the_clock() -> None:
    clock = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    p = provider(clock=clock)
    cred = make_credential(KIND, {"sas_expiry": "2026-06-30T00:00:00Z", "sas_permissions": "rl"})
    assert p.warnings(cred) == ()
    clock.set(dt.datetime(2026, 6, 17, tzinfo=dt.UTC))
    (soon,) = p.warnings(cred)
    assert "within 14 days" in soon
    clock.set(dt.datetime(2026, 6, 30, tzinfo=dt.UTC))
    (gone,) = p.warnings(cred)
    assert "expired" in gone
    assert p.warnings(make_credential(CredentialKind("AZURE_SHARED_KEY"))) == ()


def test_check_without_list_permission_is_forbidden(
    azurite: Azurite, container: ContainerClient
) -> None:
    later = now() + dt.timedelta(days=1)
    p = provider()
    ok = p.open(
        make_credential(KIND),
        sas_secret(azurite.account_url, container_sas(container.container_name, "rl", later)),
    )
    assert ok.check(make_mount(container.container_name)).state is MountState.AVAILABLE
    no_list = p.open(
        make_credential(KIND),
        sas_secret(azurite.account_url, container_sas(container.container_name, "r", later)),
    )
    result = no_list.check(make_mount(container.container_name))
    assert (result.state, result.reason) == (MountState.FORBIDDEN, "SAS_PERMISSION_MISSING")
    assert "list permission" in result.detail
    # Listing itself is refused the same way, as an error with a reason.
    with pytest.raises(Exception) as info:
        list(no_list.list(make_mount(container.container_name), ListRequest("", "", 10, ""), None))
    assert getattr(info.value, "reason", "") == "AZURE_FORBIDDEN"


def test_account_sas(azurite: Azurite, container: ContainerClient) -> None:
    token = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        ResourceTypes(container=True, object=True),
        "rl",
        now() + dt.timedelta(days=1),
    )
    handle = provider().open(make_credential(KIND), sas_secret(azurite.account_url, token))
    mount = sas_mount(container.container_name)
    (url,) = handle.sign(mount, ["p/two.txt"], options())
    assert requests.get(url.url, timeout=10).content == b"two"
    pages = list(handle.list(mount, ListRequest("p/", "", 1000, ""), None))
    assert {e.key for p in pages for e in p.entries} >= {"p/one.txt", "p/two.txt"}


def test_check_warns_when_the_sas_grants_more_than_the_mount_needs(
    azurite: Azurite, container: ContainerClient
) -> None:
    later = now() + dt.timedelta(minutes=30)
    name = container.container_name
    exact = provider().open(
        make_credential(KIND), sas_secret(azurite.account_url, container_sas(name, "rl", later))
    )
    ok = exact.check(make_mount(name))
    assert (ok.state, ok.warnings) == (MountState.AVAILABLE, ())
    broad = provider().open(
        make_credential(KIND), sas_secret(azurite.account_url, container_sas(name, "rwdl", later))
    )
    # The mount allows PUT: write is needed, delete is not.
    (warning,) = broad.check(make_mount(name)).warnings
    assert warning == "the SAS grants more than the mount needs: d (delete)"
    read_only = make_mount(name)
    read_only = replace(
        read_only, policy=replace(read_only.policy, allowed_methods=frozenset({Method.GET}))
    )
    (warning,) = broad.check(read_only).warnings
    assert warning == "the SAS grants more than the mount needs: d (delete), w (write)"
    account_token = generate_account_sas(
        ACCOUNT, ACCOUNT_KEY, ResourceTypes(container=True, object=True), "rl", later
    )
    account = provider().open(make_credential(KIND), sas_secret(azurite.account_url, account_token))
    (warning,) = account.check(make_mount(name)).warnings
    assert warning.startswith("the SAS is an account SAS")
    lasting = provider().open(
        make_credential(KIND),
        sas_secret(azurite.account_url, container_sas(name, "rl", now() + dt.timedelta(days=2))),
    )
    (warning,) = lasting.check(make_mount(name)).warnings
    assert "SAS_OUTLIVES_MOUNT_TTL" in warning
    assert lasting.check(sas_mount(name)).warnings == ()
