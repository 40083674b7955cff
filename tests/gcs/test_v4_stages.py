"""GCS V4 stages: the batch's own stage objects against a from-the-spec computation.

Google publishes no GOOG4-HMAC vector, so the expected strings are written out here from
the V4 signing description and hashed with the standard library alone. The stage
functions and ``V4Batch`` share one implementation of each stage; both entry points are
checked, and both must notice a change of path or key.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import HMAC_ACCESS_ID, HMAC_SECRET

from bucketvault.models import Method
from bucketvault.providers.gcs.v4 import (
    DEFAULT_ENDPOINT,
    HmacKeySigner,
    KeySigner,
    RsaKeySigner,
    V4Batch,
    V4Options,
    canonical_request,
    string_to_sign,
)

SIGNED_AT = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
TIMESTAMP = "20260314T150926Z"
SCOPE = "20260314/auto/storage/goog4_request"
PATH = "/example-bucket/cat%201.png"
QUERY = (
    "X-Goog-Algorithm=GOOG4-HMAC-SHA256"
    f"&X-Goog-Credential={HMAC_ACCESS_ID}%2F20260314%2Fauto%2Fstorage%2Fgoog4_request"
    f"&X-Goog-Date={TIMESTAMP}&X-Goog-Expires=600&X-Goog-SignedHeaders=host"
)
HEADERS = "host:storage.googleapis.com\n"
CANONICAL_REQUEST = f"GET\n{PATH}\n{QUERY}\n{HEADERS}\nhost\nUNSIGNED-PAYLOAD"
STRING_TO_SIGN = (
    f"GOOG4-HMAC-SHA256\n{TIMESTAMP}\n{SCOPE}\n"
    + hashlib.sha256(CANONICAL_REQUEST.encode()).hexdigest()
)


def spec_hmac(secret: str, message: str) -> str:
    """GOOG4-HMAC-SHA256 as Google describes it, with nothing of ours."""
    key = ("GOOG4" + secret).encode()
    for part in ("20260314", "auto", "storage", "goog4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def batch(signer: KeySigner) -> V4Batch:
    options = V4Options(Method.GET, 600, SIGNED_AT)
    return V4Batch(signer, DEFAULT_ENDPOINT, "example-bucket", options)


def url_signature(url: str) -> str:
    head, _, sig = url.rpartition("&X-Goog-Signature=")
    assert head
    return sig


def staged_signature(signer: KeySigner, path: str) -> str:
    """The signature for another path, through the stage functions."""
    request = canonical_request("GET", path, QUERY, HEADERS, "host")
    return signer.sign("20260314", string_to_sign(signer.algorithm, TIMESTAMP, SCOPE, request))


def test_hmac_batch_stages_render_the_spec_strings() -> None:
    signer = HmacKeySigner(HMAC_ACCESS_ID, HMAC_SECRET)
    b = batch(signer)
    request = b.canonical.render("cat%201.png")
    assert request == CANONICAL_REQUEST
    to_sign = b.to_sign.render(request)
    assert to_sign == STRING_TO_SIGN
    expected = spec_hmac(HMAC_SECRET, STRING_TO_SIGN)
    assert signer.sign(b.datestamp, to_sign) == expected
    assert b.url("cat 1.png") == (
        f"https://storage.googleapis.com{PATH}?{QUERY}&X-Goog-Signature={expected}"
    )


def test_stage_functions_render_the_spec_strings() -> None:
    request = canonical_request("GET", PATH, QUERY, HEADERS, "host")
    assert request == CANONICAL_REQUEST
    assert string_to_sign("GOOG4-HMAC-SHA256", TIMESTAMP, SCOPE, request) == STRING_TO_SIGN


def test_another_path_changes_the_signature_through_both_entry_points() -> None:
    signer = HmacKeySigner(HMAC_ACCESS_ID, HMAC_SECRET)
    by_functions = staged_signature(signer, "/example-bucket/cat%202.png")
    by_batch = url_signature(batch(signer).url("cat 2.png"))
    assert by_functions == by_batch
    assert by_batch != spec_hmac(HMAC_SECRET, STRING_TO_SIGN)


def test_another_secret_changes_the_signature_through_both_entry_points() -> None:
    signer = HmacKeySigner(HMAC_ACCESS_ID, HMAC_SECRET[:-1] + "X")
    by_functions = staged_signature(signer, PATH)
    by_batch = url_signature(batch(signer).url("cat 1.png"))
    assert by_functions == by_batch == spec_hmac(HMAC_SECRET[:-1] + "X", STRING_TO_SIGN)
    assert by_batch != spec_hmac(HMAC_SECRET, STRING_TO_SIGN)


def test_a_new_day_derives_a_new_key() -> None:
    signer = HmacKeySigner(HMAC_ACCESS_ID, HMAC_SECRET)
    today = signer.sign("20260314", STRING_TO_SIGN)
    assert signer.sign("20260315", STRING_TO_SIGN) != today
    assert signer.sign("20260314", STRING_TO_SIGN) == today


def test_rsa_batch_signs_the_stage_functions_string(rsa_key: RSAPrivateKey) -> None:
    signer = RsaKeySigner("signer@example.iam.gserviceaccount.com", rsa_key)
    b = batch(signer)
    url = b.url("cat 1.png")
    query = url.split("?", 1)[1].rpartition("&X-Goog-Signature=")[0]
    request = canonical_request("GET", PATH, query, HEADERS, "host")
    to_sign = string_to_sign(signer.algorithm, TIMESTAMP, SCOPE, request)
    assert b.to_sign.render(b.canonical.render("cat%201.png")) == to_sign
    # Raises InvalidSignature unless the URL signs exactly the staged string.
    rsa_key.public_key().verify(
        bytes.fromhex(url_signature(url)), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
