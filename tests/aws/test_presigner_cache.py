"""The presigner cache on the SigV4 hot path: a cached presigner signs the published
example exactly, and anything that changes the URL (identity, time, lifetime, method,
overrides, target) gets a presigner of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bucketvault.providers.aws.endpoints import aws_target
from bucketvault.providers.aws.sigv4 import (
    PresignerCache,
    PresignParams,
    SigningIdentity,
    derive_signing_key,
)

# The S3 API reference's presigned GET /test.txt example (see test_sigv4_stages.py).
IDENTITY = SigningIdentity("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
TARGET = aws_target("examplebucket", "us-east-1")
KEY = derive_signing_key(IDENTITY.secret_access_key, "20130524", "us-east-1", "s3")
SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def _params(**changes: object) -> PresignParams:
    base: dict[str, object] = {
        "method": "GET",
        "expires_in": 86400,
        "signed_at": datetime(2013, 5, 24, tzinfo=UTC),
    }
    return PresignParams(**{**base, **changes})  # type: ignore[arg-type]


def test_a_cached_presigner_signs_the_published_example() -> None:
    cache = PresignerCache()
    first = cache.get(TARGET, IDENTITY, _params(), KEY)
    again = cache.get(TARGET, IDENTITY, _params(), KEY)
    assert again is first
    assert again.url("test.txt").endswith("&X-Amz-Signature=" + SIGNATURE)


@pytest.mark.parametrize(
    "changed",
    [
        {"expires_in": 3600},
        {"method": "HEAD"},
        {"query": (("response-content-type", "text/plain"),)},
        {"headers": {"Content-Type": "image/png"}},
    ],
)
def test_other_parameters_get_another_presigner(changed: dict[str, object]) -> None:
    cache = PresignerCache()
    base = cache.get(TARGET, IDENTITY, _params(), KEY)
    other = cache.get(TARGET, IDENTITY, _params(**changed), KEY)
    assert other is not base
    assert other.url("test.txt") != base.url("test.txt")


def test_another_time_identity_or_target_gets_another_presigner() -> None:
    cache = PresignerCache()
    base = cache.get(TARGET, IDENTITY, _params(), KEY)
    later = _params(signed_at=_params().signed_at + timedelta(seconds=1))
    session = SigningIdentity(IDENTITY.access_key_id, IDENTITY.secret_access_key, "token")
    other_bucket = aws_target("otherbucket", "us-east-1")
    for presigner in (
        cache.get(TARGET, IDENTITY, later, KEY),
        cache.get(TARGET, session, _params(), KEY),
        cache.get(other_bucket, IDENTITY, _params(), KEY),
    ):
        assert presigner is not base
        assert presigner.url("test.txt") != base.url("test.txt")


def test_the_cache_holds_no_secret_in_its_repr() -> None:
    cache = PresignerCache()
    cache.get(TARGET, IDENTITY, _params(), KEY)
    assert IDENTITY.secret_access_key not in repr(cache)
    assert KEY.hex() not in repr(cache)
