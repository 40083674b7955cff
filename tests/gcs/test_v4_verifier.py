"""The independent verifier accepts every URL we sign and rejects every tampered one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CLIENT_EMAIL,
    HMAC_ACCESS_ID,
    HMAC_SECRET,
    make_mount,
    make_provider,
    open_handle,
    sa_info,
)
from gcs.v4verify import Rejected, verify
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault.clock import FrozenClock
from bucketvault.errors import InvalidArgument
from bucketvault.models import CredentialKind, Method, SignedUrl
from bucketvault.objectkeys import check_key
from bucketvault.providers.base import CredentialHandle
from bucketvault.testing.providers import UrlRequest

NOW = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "http://127.0.0.1:4443"


@pytest.fixture(scope="module")
def rsa_handle(rsa_key: RSAPrivateKey) -> CredentialHandle:
    provider = make_provider(FrozenClock(NOW))
    return open_handle(provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key))


@pytest.fixture(scope="module")
def hmac_handle() -> CredentialHandle:
    provider = make_provider(FrozenClock(NOW))
    return open_handle(
        provider, CredentialKind("GCS_HMAC"), {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
    )


Verify = Callable[..., object]


def rsa_verifier(rsa_key: RSAPrivateKey) -> Verify:
    def run(url: str, **kw: object) -> object:
        kw.setdefault("signer", CLIENT_EMAIL)
        kw.setdefault("public_key", rsa_key.public_key())
        return verify(url, **kw)  # type: ignore[arg-type]

    return run


def hmac_verifier() -> Verify:
    def run(url: str, **kw: object) -> object:
        kw.setdefault("signer", HMAC_ACCESS_ID)
        kw.setdefault("hmac_secret", HMAC_SECRET)
        return verify(url, **kw)  # type: ignore[arg-type]

    return run


def _valid(key: str) -> bool:
    try:
        check_key(key, "")
    except InvalidArgument:
        return False
    return True


keys = st.text(min_size=1, max_size=40).filter(_valid) | st.sampled_from(
    ["a//b", "sp ace", "plus+%25~", "ünï/cødé 😀", "q?x#y&z=1"]
)


@pytest.mark.parametrize("kind", ["rsa", "hmac"])
@settings(max_examples=120, deadline=None)
@given(
    key=keys,
    method=st.sampled_from(list(Method)),
    ttl=st.integers(1, 604800),
    disposition=st.sampled_from(["", 'attachment; filename="x y.png"', "€"]),
)
def test_verifier_accepts_every_url_we_sign(
    kind: str,
    rsa_key: RSAPrivateKey,
    rsa_handle: CredentialHandle,
    hmac_handle: CredentialHandle,
    key: str,
    method: Method,
    ttl: int,
    disposition: str,
) -> None:
    handle, check = (
        (rsa_handle, rsa_verifier(rsa_key)) if kind == "rsa" else (hmac_handle, hmac_verifier())
    )
    content_type = "image/png" if method is Method.PUT else ""
    [s] = handle.sign(
        make_mount("bkt", ENDPOINT),
        [key],
        UrlRequest(
            method, ttl, response_content_disposition=disposition, content_type=content_type
        ),
    )
    got = check(s.url, method=method.value, now=NOW, headers=s.required_headers)
    assert got.object_name == key  # type: ignore[attr-defined]
    assert got.bucket == "bkt"  # type: ignore[attr-defined]
    assert got.expires_at == s.expires_at  # type: ignore[attr-defined]
    # The last valid second still passes; the first second after expiry does not.
    check(
        s.url,
        method=method.value,
        now=s.expires_at - timedelta(seconds=1),
        headers=s.required_headers,
    )
    with pytest.raises(Rejected, match="expired"):
        check(s.url, method=method.value, now=s.expires_at, headers=s.required_headers)


def _sign(handle: CredentialHandle, method: Method = Method.GET, **kw: str) -> SignedUrl:
    [s] = handle.sign(
        make_mount("bkt", ENDPOINT), ["photos/cat 1.png"], UrlRequest(method, 600, **kw)
    )
    return s


def _flip_signature(url: str) -> str:
    last = url[-1]
    return url[:-1] + ("0" if last != "0" else "1")


TAMPERS: dict[str, Callable[[str], str]] = {
    "signature": _flip_signature,
    "path": lambda u: u.replace("cat%201.png", "cat%202.png"),
    "bucket": lambda u: u.replace("/bkt/", "/bkt2/"),
    "host": lambda u: u.replace("127.0.0.1:4443", "127.0.0.1:4444"),
    "added parameter": lambda u: u.replace("?", "?generation=1&", 1),
    "changed expiry": lambda u: u.replace("X-Goog-Expires=600", "X-Goog-Expires=6000"),
    "changed date": lambda u: u.replace(
        "X-Goog-Date=20260630T120000Z", "X-Goog-Date=20260630T120100Z"
    ),
    "scheme": lambda u: u.replace("http://", "https://"),
}


@pytest.mark.parametrize("kind", ["rsa", "hmac"])
@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_verifier_rejects_tampered_urls(
    kind: str,
    tamper: str,
    rsa_key: RSAPrivateKey,
    rsa_handle: CredentialHandle,
    hmac_handle: CredentialHandle,
) -> None:
    handle, check = (
        (rsa_handle, rsa_verifier(rsa_key)) if kind == "rsa" else (hmac_handle, hmac_verifier())
    )
    s = _sign(handle)
    check(s.url, method="GET", now=NOW)
    tampered = TAMPERS[tamper](s.url)
    if tamper == "scheme":
        # The scheme is not part of a V4 signature: the URL stays valid, as with Google.
        check(tampered, method="GET", now=NOW)
        return
    assert tampered != s.url
    with pytest.raises(Rejected):
        check(tampered, method="GET", now=NOW + timedelta(seconds=1))


@pytest.mark.parametrize("kind", ["rsa", "hmac"])
def test_verifier_rejects_other_method_key_signer_and_expired(
    kind: str,
    rsa_key: RSAPrivateKey,
    other_rsa_key: RSAPrivateKey,
    rsa_handle: CredentialHandle,
    hmac_handle: CredentialHandle,
) -> None:
    handle, check = (
        (rsa_handle, rsa_verifier(rsa_key)) if kind == "rsa" else (hmac_handle, hmac_verifier())
    )
    s = _sign(handle)
    with pytest.raises(Rejected, match="signature"):
        check(s.url, method="HEAD", now=NOW)
    with pytest.raises(Rejected, match="signature"):
        check(s.url, method="PUT", now=NOW)
    wrong_key: dict[str, object] = (
        {"public_key": other_rsa_key.public_key()} if kind == "rsa" else {"hmac_secret": "x" * 40}
    )
    with pytest.raises(Rejected, match="signature"):
        check(s.url, method="GET", now=NOW, **wrong_key)
    with pytest.raises(Rejected, match="someone else"):
        check(s.url, method="GET", now=NOW, signer="intruder@example.com")
    with pytest.raises(Rejected, match="expired"):
        check(s.url, method="GET", now=NOW + timedelta(seconds=600))
    with pytest.raises(Rejected, match="not yet valid"):
        check(s.url, method="GET", now=NOW - timedelta(seconds=1))


@pytest.mark.parametrize("kind", ["rsa", "hmac"])
def test_put_content_type_is_signed_and_required(
    kind: str, rsa_key: RSAPrivateKey, rsa_handle: CredentialHandle, hmac_handle: CredentialHandle
) -> None:
    handle, check = (
        (rsa_handle, rsa_verifier(rsa_key)) if kind == "rsa" else (hmac_handle, hmac_verifier())
    )
    s = _sign(handle, Method.PUT, content_type="image/png")
    assert dict(s.required_headers) == {"Content-Type": "image/png"}
    assert "X-Goog-SignedHeaders=content-type%3Bhost" in s.url
    check(s.url, method="PUT", now=NOW, headers={"Content-Type": "image/png"})
    with pytest.raises(Rejected, match="signature"):
        check(s.url, method="PUT", now=NOW, headers={"Content-Type": "text/html"})
    with pytest.raises(Rejected, match="not sent"):
        check(s.url, method="PUT", now=NOW)


@pytest.mark.parametrize("kind", ["rsa", "hmac"])
def test_response_overrides_are_signed(
    kind: str, rsa_key: RSAPrivateKey, rsa_handle: CredentialHandle, hmac_handle: CredentialHandle
) -> None:
    handle, check = (
        (rsa_handle, rsa_verifier(rsa_key)) if kind == "rsa" else (hmac_handle, hmac_verifier())
    )
    s = _sign(
        handle,
        response_content_type="image/png",
        response_content_disposition='attachment; filename="x.png"',
    )
    assert "response-content-type=image%2Fpng" in s.url
    check(s.url, method="GET", now=NOW)
    forged = s.url.replace("response-content-type=image%2Fpng", "response-content-type=text%2Fhtml")
    with pytest.raises(Rejected, match="signature"):
        check(forged, method="GET", now=NOW)


def test_rsa_and_hmac_urls_name_their_algorithm_and_signer(
    rsa_handle: CredentialHandle, hmac_handle: CredentialHandle
) -> None:
    rsa_url = _sign(rsa_handle).url
    hmac_url = _sign(hmac_handle).url
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256&" in rsa_url
    assert (
        "X-Goog-Credential=signer%40bv-test.iam.gserviceaccount.com%2F20260630%2Fauto%2Fstorage%2Fgoog4_request"
        in rsa_url
    )
    assert "X-Goog-Algorithm=GOOG4-HMAC-SHA256&" in hmac_url
    assert (
        f"X-Goog-Credential={HMAC_ACCESS_ID}%2F20260630%2Fauto%2Fstorage%2Fgoog4_request"
        in hmac_url
    )
    # An HMAC-signed URL is not accepted as RSA-signed by the same verifier, and vice versa.
    with pytest.raises(Rejected):
        verify(hmac_url, method="GET", now=NOW, signer=HMAC_ACCESS_ID, public_key=None)
    assert HMAC_SECRET not in hmac_url
    assert HMAC_SECRET not in repr(hmac_handle)


def test_non_ascii_content_type_is_refused(hmac_handle: CredentialHandle) -> None:
    with pytest.raises(InvalidArgument) as info:
        _sign(hmac_handle, Method.PUT, content_type="image/pngé")
    assert info.value.reason == "INVALID_HEADER_VALUE"
