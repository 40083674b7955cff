"""ListPrefix through the provider: delimiter, page_token resume, signing, confinement."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.azurite_support import (
    Azurite,
    make_credential,
    make_mount,
    options,
    provider,
    sdk_service,
    shared_key_secret,
    unique,
)
from azure.storage.blob import ContainerClient

from bucketvault.errors import NotFound
from bucketvault.models import CredentialKind, ListRequest

pytestmark = pytest.mark.azurite

KIND = CredentialKind.AZURE_SHARED_KEY
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
