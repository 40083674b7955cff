"""AZURE_SHARED_KEY through the provider, verified by Azurite."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

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
    sdk_service,
    shared_key_secret,
    tamper,
    unique,
)
from azure.storage.blob import ContainerClient, generate_blob_sas

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind, Method, MountState
from bucketvault.testing.providers import RawSecret

pytestmark = pytest.mark.azurite

KIND = CredentialKind("AZURE_SHARED_KEY")


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    client.upload_blob("a/cat.jpg", b"meow")
    client.upload_blob("a/dog.jpg", b"woof")
    client.upload_blob("b c/ü ñ+%.txt", b"unicode")
    yield client
    client.delete_container()


def test_get_url_fetches_the_right_bytes(azurite: Azurite, container: ContainerClient) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    mount = make_mount(container.container_name)
    urls = handle.sign(mount, ["a/cat.jpg", "a/dog.jpg", "b c/ü ñ+%.txt"], options())
    bodies = [requests.get(u.url, timeout=10) for u in urls]
    assert [b.status_code for b in bodies] == [200, 200, 200]
    assert [b.content for b in bodies] == [b"meow", b"woof", b"unicode"]
    assert all(u.method is Method.GET and not u.required_headers for u in urls)
    assert requests.head(urls[0].url, timeout=10).status_code == 200


def test_refusals_by_azurite(azurite: Azurite, container: ContainerClient) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    mount = make_mount(container.container_name)
    cat, dog = handle.sign(mount, ["a/cat.jpg", "a/dog.jpg"], options())
    assert requests.get(tamper(cat.url), timeout=10).status_code == 403
    # The cat's SAS on the dog's path: the signature covers the blob name.
    other = dog.url.split("?")[0] + "?" + cat.url.split("?")[1]
    assert requests.get(other, timeout=10).status_code == 403
    # A read URL cannot write.
    put = requests.put(cat.url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403
    assert container.download_blob("a/cat.jpg").readall() == b"meow"


def test_expired_url_is_refused(azurite: Azurite, container: ContainerClient) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    handle = provider(clock=FrozenClock(past)).open(
        make_credential(KIND), shared_key_secret(azurite.account_url)
    )
    (url,) = handle.sign(make_mount(container.container_name), ["a/cat.jpg"], options(ttl=60))
    assert url.expires_at < dt.datetime.now(dt.UTC)
    assert requests.get(url.url, timeout=10).status_code == 403


def test_put_url_uploads_with_required_headers(
    azurite: Azurite, container: ContainerClient
) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    (url,) = handle.sign(
        make_mount(container.container_name),
        ["up/new.png"],
        options(Method.PUT, content_type="image/png"),
    )
    assert dict(url.required_headers) == {
        "x-ms-blob-type": "BlockBlob",
        "Content-Type": "image/png",
    }
    assert "sp=cw" in url.url
    response = requests.put(url.url, data=b"png!", headers=dict(url.required_headers), timeout=10)
    assert response.status_code == 201
    blob = container.get_blob_client("up/new.png")
    assert blob.download_blob().readall() == b"png!"
    assert blob.get_blob_properties().content_settings.content_type == "image/png"


def test_response_overrides(azurite: Azurite, container: ContainerClient) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    (url,) = handle.sign(
        make_mount(container.container_name),
        ["a/cat.jpg"],
        options(
            response_content_type="image/jpeg",
            response_content_disposition='attachment; filename="cat.jpg"',
        ),
    )
    response = requests.get(url.url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == 'attachment; filename="cat.jpg"'


def test_url_equals_sdk_for_same_expiry(azurite: Azurite, container: ContainerClient) -> None:
    clock = FrozenClock(dt.datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=dt.UTC))
    handle = provider(clock=clock).open(
        make_credential(KIND), shared_key_secret(azurite.account_url)
    )
    (url,) = handle.sign(make_mount(container.container_name), ["b c/ü ñ+%.txt"], options(ttl=900))
    assert url.expires_at == dt.datetime(2026, 5, 1, 10, 15, 0, tzinfo=dt.UTC)
    token = generate_blob_sas(
        ACCOUNT,
        container.container_name,
        "b c/ü ñ+%.txt",
        account_key=ACCOUNT_KEY,
        permission="r",
        expiry=url.expires_at,
    )
    blob = container.get_blob_client("b c/ü ñ+%.txt")
    assert url.url == f"{blob.url}?{token}"


def test_expiry_capped_by_provider_max(azurite: Azurite) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    (url,) = handle.sign(make_mount("c"), ["k"], options(ttl=30 * 24 * 3600))
    assert url.expiry_capped_by == "PROVIDER_MAX"
    (kept,) = handle.sign(make_mount("c"), ["k"], options(ttl=60, capped_by="MOUNT_MAX_TTL"))
    assert kept.expiry_capped_by == "MOUNT_MAX_TTL"


def test_prepare_accepts_the_key_and_refuses_a_wrong_one(azurite: Azurite) -> None:
    p = provider()
    assert p.prepare(context(KIND), shared_key_secret(azurite.account_url)).warnings == ()
    wrong = base64.b64encode(b"w" * 64).decode()
    secret = RawSecret(
        KIND, {"account_url": azurite.account_url, "account_name": ACCOUNT, "account_key": wrong}
    )
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), secret)
    assert info.value.reason == "AZURE_AUTH_FAILED"
    assert wrong not in str(info.value)


def test_prepare_rejects_a_key_that_is_not_base64(azurite: Azurite) -> None:
    secret = RawSecret(
        KIND,
        {"account_url": azurite.account_url, "account_name": ACCOUNT, "account_key": "not*b64!"},
    )
    with pytest.raises(InvalidArgument) as info:
        provider().prepare(context(KIND), secret)
    assert (info.value.reason, info.value.field) == ("INVALID_CREDENTIAL", "secret.account_key")
    assert "not*b64!" not in str(info.value)


def test_check_states(azurite: Azurite, container: ContainerClient) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    ok = handle.check(make_mount(container.container_name))
    assert ok.state is MountState.AVAILABLE
    missing = handle.check(make_mount(unique("missing")))
    assert (missing.state, missing.reason) == (MountState.NOT_FOUND, "CONTAINER_NOT_FOUND")
    dead = handle.check(make_mount("c", endpoint=f"http://127.0.0.1:1/{ACCOUNT}"))
    assert (dead.state, dead.reason) == (MountState.MISCONFIGURED, "ACCOUNT_UNREACHABLE")


def test_repr_and_errors_hide_the_key(azurite: Azurite) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    assert ACCOUNT_KEY not in repr(handle)
    assert ACCOUNT_KEY not in repr(shared_key_secret(azurite.account_url))
