"""Service-account mounts against fake-gcs-server: listing, resume, signed GETs, CheckMount."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CLIENT_EMAIL,
    DIRECT,
    ODD_KEYS,
    TokenEndpoint,
    free_port,
    make_mount,
    make_provider,
    open_handle,
    sa_info,
    upload,
)
from gcs.v4verify import verify

from bucketvault.clock import FrozenClock
from bucketvault.errors import NotFound, PermissionDenied
from bucketvault.models import (
    CredentialKind,
    ListPage,
    ListRequest,
    Method,
    MountState,
)
from bucketvault.providers.base import CredentialHandle
from bucketvault.providers.kinds import StoredSecretRefused
from bucketvault.testing.providers import UrlRequest

pytestmark = pytest.mark.gcs

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def handle(rsa_key: RSAPrivateKey, token_endpoint: TokenEndpoint) -> Iterator[CredentialHandle]:
    provider = make_provider(FrozenClock(NOW), frozenset({token_endpoint.url}))
    h = open_handle(
        provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key, token_endpoint.url)
    )
    yield h
    h.close()


def _collect(pages: Iterator[ListPage]) -> tuple[list[str], list[str], int]:
    keys: list[str] = []
    prefixes: list[str] = []
    count = 0
    for page in pages:
        count += 1
        keys.extend(e.key for e in page.entries)
        prefixes.extend(page.common_prefixes)
    return keys, prefixes, count


@pytest.mark.parametrize("page_size", [1000, 333])
def test_listing_2500_objects_with_delimiter_lazily(
    handle: CredentialHandle, fake_gcs: str, bucket: str, page_size: int
) -> None:
    mount = make_mount(bucket, fake_gcs, prefix="big/")
    request = ListRequest(prefix="big/", delimiter="/", page_size=page_size, page_token="")
    keys, prefixes, pages = _collect(handle.list(mount, request, None))
    assert keys == DIRECT  # every object once, in order
    assert sorted(set(prefixes)) == [f"big/sub-{k}/" for k in range(5)]
    assert len(prefixes) == 5
    assert pages >= -(-2500 // page_size)


def test_resume_by_page_token_returns_every_object_once_in_order(
    handle: CredentialHandle, fake_gcs: str, bucket: str
) -> None:
    mount = make_mount(bucket, fake_gcs, prefix="big/")
    seen: list[str] = []
    token = ""
    resumes = 0
    while True:
        # A fresh call per page, as a client resuming after a disconnect would make.
        request = ListRequest(prefix="big/", delimiter="/", page_size=700, page_token=token)
        page = next(iter(handle.list(mount, request, None)))
        assert len(page.entries) <= 700
        seen.extend(e.key for e in page.entries)
        token = page.next_page_token
        if not token:
            break
        resumes += 1
    assert seen == DIRECT
    assert resumes >= 3


def test_listing_without_delimiter_sees_nested_objects_and_sizes(
    handle: CredentialHandle, fake_gcs: str, bucket: str
) -> None:
    mount = make_mount(bucket, fake_gcs)
    request = ListRequest(prefix="big/sub-1/", delimiter="", page_size=0, page_token="")
    [page] = list(handle.list(mount, request, None))
    assert [e.key for e in page.entries] == [f"big/sub-1/x-{j}.bin" for j in range(3)]
    assert page.common_prefixes == ()
    assert all(e.size == len(e.key) for e in page.entries)
    assert all(e.last_modified is not None and e.etag for e in page.entries)


def test_signed_get_urls_fetch_the_right_bytes(
    handle: CredentialHandle, rsa_key: RSAPrivateKey, fake_gcs: str, bucket: str
) -> None:
    mount = make_mount(bucket, fake_gcs)
    signed = handle.sign(mount, ODD_KEYS, UrlRequest(Method.GET, 300))
    for s in signed:
        got = verify(
            s.url, method="GET", now=NOW, signer=CLIENT_EMAIL, public_key=rsa_key.public_key()
        )
        assert got.object_name == s.key
        r = requests.get(s.url, timeout=10)
        assert r.status_code == 200, s.url
        assert r.content == b"bytes of " + s.key.encode()


def test_listing_can_sign_each_entry(
    handle: CredentialHandle, rsa_key: RSAPrivateKey, fake_gcs: str, bucket: str
) -> None:
    mount = make_mount(bucket, fake_gcs)
    request = ListRequest(prefix="odd/", delimiter="", page_size=2, page_token="")
    entries = [
        e for page in handle.list(mount, request, UrlRequest(Method.GET, 120)) for e in page.entries
    ]
    assert [e.key for e in entries] == sorted(ODD_KEYS)
    for e in entries:
        verify(e.url, method="GET", now=NOW, signer=CLIENT_EMAIL, public_key=rsa_key.public_key())
        assert requests.get(e.url, timeout=10).content == b"bytes of " + e.key.encode()


def test_listing_uses_one_cached_token(
    handle: CredentialHandle, token_endpoint: TokenEndpoint, fake_gcs: str, bucket: str
) -> None:
    mount = make_mount(bucket, fake_gcs, prefix="big/")
    request = ListRequest(prefix="big/", delimiter="/", page_size=500, page_token="")
    _collect(handle.list(mount, request, None))
    _collect(handle.list(mount, request, None))
    assert token_endpoint.state.grants == 1


def test_check_mount_states(
    handle: CredentialHandle, token_endpoint: TokenEndpoint, fake_gcs: str, bucket: str
) -> None:
    ok = handle.check(make_mount(bucket, fake_gcs))
    assert ok.state is MountState.AVAILABLE

    missing = handle.check(make_mount("no-such-bucket", fake_gcs))
    assert missing.state is MountState.NOT_FOUND
    assert missing.reason == "BUCKET_NOT_FOUND"

    # A GCS that answers 403 (the token endpoint's server doubles as one).
    denied = handle.check(make_mount("secret-bucket", token_endpoint.base))
    assert denied.state is MountState.FORBIDDEN
    assert denied.reason == "ACCESS_DENIED"
    assert denied.detail == (
        f"service account {CLIENT_EMAIL} lacks storage.objects.list on bucket secret-bucket"
    )
    assert token_endpoint.state.bearer_seen == [f"Bearer {token_endpoint.state.issued[0]}"]

    closed = handle.check(make_mount(bucket, f"http://127.0.0.1:{free_port()}"))
    assert closed.state is MountState.MISCONFIGURED
    assert closed.reason == "ENDPOINT_UNREACHABLE"


def test_list_errors_are_translated(
    handle: CredentialHandle, token_endpoint: TokenEndpoint, fake_gcs: str, bucket: str
) -> None:
    request = ListRequest(prefix="", delimiter="", page_size=10, page_token="")
    with pytest.raises(NotFound) as nf:
        list(handle.list(make_mount("no-such-bucket", fake_gcs), request, None))
    assert nf.value.reason == "BUCKET_NOT_FOUND"
    with pytest.raises(PermissionDenied) as pd:
        list(handle.list(make_mount("secret-bucket", token_endpoint.base), request, None))
    assert pd.value.reason == "BUCKET_FORBIDDEN"
    assert "ya29" not in str(pd.value) and "ya29" not in repr(pd.value)


def test_refused_key_makes_the_mount_misconfigured(
    rsa_key: RSAPrivateKey, token_endpoint: TokenEndpoint, fake_gcs: str, bucket: str
) -> None:
    token_endpoint.state.mode = "refuse"
    provider = make_provider(FrozenClock(NOW), frozenset({token_endpoint.url}))
    h = open_handle(
        provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key, token_endpoint.url)
    )
    result = h.check(make_mount(bucket, fake_gcs))
    assert result.state is MountState.MISCONFIGURED
    assert result.reason == "GCS_TOKEN_REFUSED"
    assert "Invalid JWT" not in result.detail
    # Signing needs no token: it still works while listing cannot.
    assert h.sign(make_mount(bucket, fake_gcs), ["k"], UrlRequest(Method.GET, 60))[0].url


def test_token_uri_no_longer_allowed_is_misconfigured(
    rsa_key: RSAPrivateKey, token_endpoint: TokenEndpoint, fake_gcs: str, bucket: str
) -> None:
    provider = make_provider(FrozenClock(NOW))  # the local endpoint is not allow-listed
    # The kind's parser runs again when a stored key is opened: it is refused before any
    # token is asked for (CheckMount then answers MISCONFIGURED with this reason).
    with pytest.raises(StoredSecretRefused) as info:
        open_handle(
            provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key, token_endpoint.url)
        )
    assert info.value.reason == "TOKEN_URI_NOT_ALLOWED"
    assert token_endpoint.state.grants == 0


def test_object_names_reach_the_json_api_encoded(fake_gcs: str, bucket: str) -> None:
    # Sanity check of the peer itself: names with '/' and spaces round-trip.
    r = requests.get(
        f"{fake_gcs}/storage/v1/b/{bucket}/o/{quote(ODD_KEYS[0], safe='')}", timeout=10
    )
    assert r.status_code == 200
    assert r.json()["name"] == ODD_KEYS[0]


@pytest.mark.parametrize("bad", ["dots/../escape.jpg", "dots/./here.jpg", "dots/x\x01.jpg"])
def test_listed_key_with_a_dot_segment_gets_no_url(
    handle: CredentialHandle, fake_gcs: str, bucket: str, bad: str
) -> None:
    # The listed-key rule holds for GCS too: a stored name SignURL would refuse is listed
    # with the reason and without a URL; its neighbour is signed as usual.
    with requests.Session() as session:
        upload(session, fake_gcs, bucket, bad, b"x")
        upload(session, fake_gcs, bucket, "dots/fine.jpg", b"y")
    mount = make_mount(bucket, fake_gcs, prefix="dots/")
    request = ListRequest(prefix="dots/", delimiter="", page_size=100, page_token="")
    entries = {
        e.key: e
        for page in handle.list(mount, request, UrlRequest(Method.GET, 300))
        for e in page.entries
    }
    assert entries[bad].url == ""
    assert entries[bad].url_error == "INVALID_KEY"
    assert entries["dots/fine.jpg"].url.startswith(f"{fake_gcs}/{bucket}/dots/fine.jpg?")
    assert entries["dots/fine.jpg"].url_error == ""
