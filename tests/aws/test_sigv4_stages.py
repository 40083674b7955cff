"""AWS's published SigV4 examples, run through the batch's own stage objects.

The stage functions and ``BatchPresigner`` share one implementation of each stage; these
tests check the published values through both entry points, and that both notice a
change of path or key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bucketvault.providers.aws.endpoints import aws_target
from bucketvault.providers.aws.sigv4 import (
    BatchPresigner,
    PresignParams,
    SigningIdentity,
    canonical_request,
    derive_signing_key,
    signature,
    string_to_sign,
)
from bucketvault.providers.signing import encode_path

# S3 API reference, "Authenticating Requests: Using Query Parameters (AWS Signature
# Version 4)", example presigned URL for GET /test.txt.
IDENTITY = SigningIdentity("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SIGNED_AT = datetime(2013, 5, 24, tzinfo=UTC)
TIMESTAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
HOST = "examplebucket.s3.amazonaws.com"
QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
)
CANONICAL_REQUEST = f"GET\n/test.txt\n{QUERY}\nhost:{HOST}\n\nhost\nUNSIGNED-PAYLOAD"
STRING_TO_SIGN = (
    f"AWS4-HMAC-SHA256\n{TIMESTAMP}\n{SCOPE}\n"
    "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
)
SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
URL = f"https://{HOST}/test.txt?{QUERY}&X-Amz-Signature={SIGNATURE}"


def signing_key(identity: SigningIdentity = IDENTITY) -> bytes:
    return derive_signing_key(identity.secret_access_key, "20130524", "us-east-1", "s3")


def example_batch(identity: SigningIdentity = IDENTITY) -> BatchPresigner:
    params = PresignParams("GET", 86400, SIGNED_AT)
    return BatchPresigner(
        aws_target("examplebucket", "us-east-1"), identity, params, signing_key(identity)
    )


def staged_signature(key: str, identity: SigningIdentity = IDENTITY) -> str:
    """The example's signature for another object key, through the stage functions."""
    request = canonical_request("GET", "/" + encode_path(key), QUERY, {"host": HOST})
    return signature(signing_key(identity), string_to_sign(TIMESTAMP, SCOPE, request))


def url_signature(url: str) -> str:
    head, _, sig = url.rpartition("&X-Amz-Signature=")
    assert head and len(sig) == 64
    return sig


def test_published_query_example_through_the_batch_stages() -> None:
    batch = example_batch()
    request = batch.canonical.render("test.txt")
    assert request == CANONICAL_REQUEST
    to_sign = batch.to_sign.render(request)
    assert to_sign == STRING_TO_SIGN
    assert batch.mac.hexdigest(to_sign) == SIGNATURE
    assert batch.url("test.txt") == URL


def test_published_query_example_through_the_stage_functions() -> None:
    request = canonical_request("GET", "/test.txt", QUERY, {"host": HOST})
    assert request == CANONICAL_REQUEST
    assert string_to_sign(TIMESTAMP, SCOPE, request) == STRING_TO_SIGN
    assert signature(signing_key(), STRING_TO_SIGN) == SIGNATURE


def test_published_header_example_through_the_stage_functions() -> None:
    """The same page's GET Object example (Authorization header): more headers, a payload hash."""
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    headers = {
        # Mixed case and padding: canonicalisation lowercases names and trims values.
        "Host": HOST,
        "range": " bytes=0-9 ",
        "x-amz-content-sha256": empty_sha256,
        "x-amz-date": TIMESTAMP,
    }
    request = canonical_request("GET", "/test.txt", "", headers, empty_sha256)
    assert request == (
        f"GET\n/test.txt\n\nhost:{HOST}\nrange:bytes=0-9\nx-amz-content-sha256:{empty_sha256}\n"
        f"x-amz-date:{TIMESTAMP}\n\nhost;range;x-amz-content-sha256;x-amz-date\n{empty_sha256}"
    )
    to_sign = string_to_sign(TIMESTAMP, SCOPE, request)
    assert to_sign.endswith("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    assert (
        signature(signing_key(), to_sign)
        == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


@pytest.mark.parametrize(
    "key", ["test.txt", "test2.txt", "dir/a b+c.txt", "é/日本/😀", "~tilde//double"]
)
def test_both_entry_points_agree_for_any_key(key: str) -> None:
    assert url_signature(example_batch().url(key)) == staged_signature(key)


def test_another_path_changes_the_signature_through_both_entry_points() -> None:
    by_functions = staged_signature("test2.txt")
    by_batch = url_signature(example_batch().url("test2.txt"))
    assert by_functions == by_batch
    assert by_batch != SIGNATURE


def test_another_secret_changes_the_signature_through_both_entry_points() -> None:
    other = SigningIdentity(IDENTITY.access_key_id, IDENTITY.secret_access_key[:-1] + "X")
    by_functions = staged_signature("test.txt", other)
    by_batch = url_signature(example_batch(other).url("test.txt"))
    assert by_functions == by_batch
    assert by_batch != SIGNATURE


def test_the_signing_key_is_not_in_the_batch_repr() -> None:
    assert signing_key().hex() not in repr(example_batch().mac)
