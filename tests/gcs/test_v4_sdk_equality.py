"""Our RSA V4 URLs are byte-for-byte google-cloud-storage's generate_signed_url(version="v4")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import google.cloud.storage._signing as gcs_signing
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import make_mount, make_provider, open_handle, sa_info
from google.cloud import storage
from google.oauth2 import service_account
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument
from bucketvault.models import CredentialKind, Method
from bucketvault.objectkeys import check_key
from bucketvault.providers.base import CredentialHandle
from bucketvault.testing.providers import UrlRequest

NOW = datetime(2026, 3, 14, 23, 59, 58, 123456, tzinfo=UTC)


@dataclass
class Sdk:
    client: storage.Client
    credentials: Any


@pytest.fixture(scope="module")
def sdk(rsa_key: RSAPrivateKey) -> Iterator[Sdk]:
    credentials = service_account.Credentials.from_service_account_info(sa_info(rsa_key))
    client = storage.Client(project="bv-test", credentials=credentials)
    # Freeze the library's clock (google-cloud-storage, not ours) at the same instant.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gcs_signing, "_NOW", lambda tz=None: NOW.astimezone(tz))
        yield Sdk(client, credentials)


@pytest.fixture(scope="module")
def handle(rsa_key: RSAPrivateKey) -> CredentialHandle:
    provider = make_provider(FrozenClock(NOW))
    return open_handle(provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key))


def _valid(key: str) -> bool:
    try:
        check_key(key, "")
    except InvalidArgument:
        return False
    return True


pieces = st.one_of(
    st.sampled_from(
        ["+", "%", "~", "//", " ", "%20", "a+b", "é", "日本", "😀", "?", "#", "&", "="]
    ),
    st.text(min_size=1, max_size=8),
)
object_names = (
    st.lists(pieces, min_size=1, max_size=6)
    .map("".join)
    .filter(_valid)
    .filter(lambda k: len(k) < 900)
)
endpoints = st.sampled_from(["", "http://127.0.0.1:4443", "https://storage.example.com"])
buckets = st.sampled_from(["bucket", "my-bucket.example", "b_1"])
content_types = st.sampled_from(["", "image/png", "text/plain; charset=utf-8"])
dispositions = st.sampled_from(
    ["", 'attachment; filename="a b.png"', "inline; filename*=UTF-8''%E2%82%AC.png", "€ naïve"]
)


def sdk_url(
    sdk: Sdk,
    bucket: str,
    key: str,
    endpoint: str,
    method: Method,
    ttl: int,
    response_type: str,
    disposition: str,
    content_type: str,
) -> str:
    blob = sdk.client.bucket(bucket).blob(key)
    return str(
        blob.generate_signed_url(
            version="v4",
            expiration=timedelta(seconds=ttl),
            method=method.value,
            credentials=sdk.credentials,
            api_access_endpoint=endpoint or None,
            response_type=response_type or None,
            response_disposition=disposition or None,
            content_type=content_type or None,
        )
    )


@settings(max_examples=300, deadline=None)
@given(
    key=object_names,
    bucket=buckets,
    endpoint=endpoints,
    method=st.sampled_from(list(Method)),
    ttl=st.integers(min_value=1, max_value=604800),
    response_type=content_types,
    disposition=dispositions,
    content_type=content_types,
)
def test_rsa_urls_are_byte_identical_to_google_cloud_storage(
    sdk: Sdk,
    handle: CredentialHandle,
    key: str,
    bucket: str,
    endpoint: str,
    method: Method,
    ttl: int,
    response_type: str,
    disposition: str,
    content_type: str,
) -> None:
    if method is not Method.PUT:
        content_type = ""
    options = UrlRequest(
        method=method,
        expires_in=ttl,
        response_content_type=response_type,
        response_content_disposition=disposition,
        content_type=content_type,
    )
    [ours] = handle.sign(make_mount(bucket, endpoint), [key], options)
    theirs = sdk_url(
        sdk, bucket, key, endpoint, method, ttl, response_type, disposition, content_type
    )
    assert ours.url == theirs
    assert ours.expires_at == NOW.replace(microsecond=0) + timedelta(seconds=ttl)
    assert dict(ours.required_headers) == ({"Content-Type": content_type} if content_type else {})


def test_a_batch_signs_each_key_like_the_sdk_and_keeps_order(
    sdk: Sdk, handle: CredentialHandle
) -> None:
    # Large enough to be spread over the signing pool.
    keys = [f"dir/{i:04d} +%~.png" for i in range(200)]
    signed = handle.sign(make_mount("bucket"), keys, UrlRequest(Method.GET, 600))
    assert [s.key for s in signed] == keys
    for s in signed[::37]:
        assert s.url == sdk_url(sdk, "bucket", s.key, "", Method.GET, 600, "", "", "")


def test_expiry_is_capped_at_seven_days(handle: CredentialHandle) -> None:
    [s] = handle.sign(make_mount("bucket"), ["k"], UrlRequest(Method.GET, 10 * 86400, capped_by=""))
    assert "X-Goog-Expires=604800&" in s.url
    assert s.expiry_capped_by == "PROVIDER_MAX"
    [kept] = handle.sign(
        make_mount("bucket"), ["k"], UrlRequest(Method.GET, 600, capped_by="MOUNT_MAX_TTL")
    )
    assert kept.expiry_capped_by == "MOUNT_MAX_TTL"
