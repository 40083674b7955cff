"""The stage objects SigV4 and GCS V4 share: published HMAC vectors and the stdlib."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketvault.providers.signing import (
    CanonicalRequest,
    HmacSha256,
    StringToSign,
    canonical_headers,
    derive_key,
    encode_path,
)

# RFC 4231 section 4, the cases whose data is text (2, 3 and 5 are raw bytes or truncated).
RFC4231 = [
    (
        b"\x0b" * 20,
        "Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        "what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 131,
        "Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        "This is a test using a larger than block-size key and a larger than block-size data."
        " The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "message", "expected"), RFC4231)
def test_hmac_matches_rfc4231(key: bytes, message: str, expected: str) -> None:
    assert HmacSha256(key).hexdigest(message) == expected


@given(key=st.binary(max_size=200), message=st.text(max_size=300))
def test_hmac_matches_the_stdlib(key: bytes, message: str) -> None:
    mac = HmacSha256(key)
    expected = hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()
    # Twice: the pre-hashed pads must not be consumed by a first use.
    assert mac.hexdigest(message) == expected
    assert mac.hexdigest(message) == expected


def test_hmac_repr_hides_the_key() -> None:
    assert "secret" not in repr(HmacSha256(b"secret"))


def test_derive_key_chains_hmac_over_the_parts() -> None:
    step = hmac.digest(b"seed", b"a", "sha256")
    assert derive_key(b"seed", ("a", "b")) == hmac.digest(step, b"b", "sha256")


@given(key=st.text(max_size=60))
def test_encode_path_equals_quote(key: str) -> None:
    # The no-quoting shortcut must never change what quote() would give.
    assert encode_path(key) == quote(key, safe="/~")


def test_canonical_request_prefix_is_part_of_the_path() -> None:
    block, signed = canonical_headers([("Host", "h"), ("X-Two", "a  b"), ("x-two", " c ")])
    assert (block, signed) == ("host:h\nx-two:a b,c\n", "host;x-two")
    with_prefix = CanonicalRequest("PUT", "a=1", block, signed, path_prefix="/bucket/")
    without = CanonicalRequest("PUT", "a=1", block, signed)
    assert with_prefix.render("k") == without.render("/bucket/k")
    assert (
        without.render("/p") == "PUT\n/p\na=1\nhost:h\nx-two:a b,c\n\nhost;x-two\nUNSIGNED-PAYLOAD"
    )


def test_string_to_sign_hashes_the_request() -> None:
    to_sign = StringToSign("ALG", "20260101T000000Z", "20260101/r/s/t").render("req")
    assert to_sign == f"ALG\n20260101T000000Z\n20260101/r/s/t\n{hashlib.sha256(b'req').hexdigest()}"
