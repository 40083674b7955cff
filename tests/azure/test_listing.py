"""ListPrefix through the provider: delimiter, page_token resume, signing, confinement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.azurite_support import (
    ACCOUNT,
    ACCOUNT_KEY,
    Azurite,
    make_credential,
    make_mount,
    options,
    provider,
    sdk_service,
    shared_key_secret,
    unique,
)
from azure.storage.blob import ContainerClient, generate_container_sas

from bucketvault.errors import NotFound
from bucketvault.models import CredentialKind, ListRequest

pytestmark = pytest.mark.azurite

KIND = CredentialKind("AZURE_SHARED_KEY")
FLAT = [f"img/{i:05d}.jpg" for i in range(2500)]
NESTED = [f"img/sub{j}/x.jpg" for j in range(3)]
OUTSIDE = ["imgx/no.jpg", "other/no.jpg"]


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.upload_blob(n, n.encode()), FLAT + NESTED + OUTSIDE))
    yield client
    client.delete_container()


def test_delimiter_listing_resumes_by_page_token(
    azurite: Azurite, container: ContainerClient
) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    mount = make_mount(container.container_name, prefix="img/")
    keys: list[str] = []
    prefixes: list[str] = []
    token = ""
    calls = 0
    while True:
        # A fresh ListPrefix call per page, resumed from the previous page's token.
        page = next(handle.list(mount, ListRequest("img/", "/", 1000, token), None))
        calls += 1
        assert len(page.entries) <= 1000
        keys.extend(e.key for e in page.entries)
        prefixes.extend(page.common_prefixes)
        token = page.next_page_token
        if not token:
            break
    assert calls >= 3
    assert keys == FLAT  # every blob once, in order, nothing from outside the prefix
    assert prefixes == [f"img/sub{j}/" for j in range(3)]


def test_listing_streams_every_page_with_sizes(
    azurite: Azurite, container: ContainerClient
) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    mount = make_mount(container.container_name)
    pages = handle.list(mount, ListRequest("img/", "", 700, ""), None)
    sizes = [len(p.entries) for p in pages]
    assert sizes == [700, 700, 700, 403]
    first = next(handle.list(mount, ListRequest("img/00000", "", 5, ""), None))
    assert first.entries[0].size == len(b"img/00000.jpg")
    assert first.entries[0].etag
    assert first.entries[0].last_modified is not None


def test_listing_with_signed_urls(azurite: Azurite, container: ContainerClient) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    mount = make_mount(container.container_name)
    page = next(handle.list(mount, ListRequest("img/sub", "", 10, ""), options()))
    assert [e.key for e in page.entries] == NESTED
    for entry in page.entries:
        assert requests.get(entry.url, timeout=10).content == entry.key.encode()


def test_listing_a_missing_container_is_not_found(azurite: Azurite) -> None:
    handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
    with pytest.raises(NotFound) as info:
        list(handle.list(make_mount(unique("nope")), ListRequest("", "", 10, ""), None))
    assert info.value.reason == "CONTAINER_NOT_FOUND"


def _put_raw(azurite: Azurite, container: str, encoded_name: str, data: bytes) -> None:
    # The SDK normalises '.'/'..' out of blob URLs before signing, so such a name can only be
    # stored by a raw PUT with the dots percent-encoded and a container SAS (which does not
    # sign the blob path), exactly as a customer's own tooling could store it.
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=ACCOUNT_KEY,
        permission="cw",
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
    )
    url = f"{azurite.account_url}/{container}/{encoded_name}?{sas}"
    r = requests.put(url, data=data, headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("encoded", "bad"),
    [("dots/%2E%2E/escape.jpg", "dots/../escape.jpg"), ("dots/%2E/here.jpg", "dots/./here.jpg")],
)
def test_listed_key_with_a_dot_segment_gets_no_url(
    azurite: Azurite, encoded: str, bad: str
) -> None:
    # The listed-key rule holds for Azure too: a stored name SignURL would refuse is listed
    # with the reason and without a URL; its neighbour is signed as usual.
    client = sdk_service(azurite.account_url).create_container(unique())
    try:
        _put_raw(azurite, client.container_name, encoded, b"x")
        client.upload_blob("dots/fine.jpg", b"y")
        handle = provider().open(make_credential(KIND), shared_key_secret(azurite.account_url))
        mount = make_mount(client.container_name, prefix="dots/")
        pages = handle.list(mount, ListRequest("dots/", "", 100, ""), options())
        entries = {e.key: e for page in pages for e in page.entries}
        assert bad in entries, sorted(entries)
        assert entries[bad].url == ""
        assert entries[bad].url_error == "INVALID_KEY"
        fine = entries["dots/fine.jpg"]
        assert fine.url_error == ""
        assert requests.get(fine.url, timeout=10).content == b"y"
    finally:
        client.delete_container()
