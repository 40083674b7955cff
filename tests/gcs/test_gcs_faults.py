"""GCS throttling: a 429 from the JSON or XML listing API is RESOURCE_EXHAUSTED with a delay.

Only the mapping is tested here (no stand-in yet): 503 stays UNAVAILABLE, 429 is the
caller's cue to slow down.
"""

from __future__ import annotations

import grpc

from bucketvault.errors import ResourceExhausted
from bucketvault.providers.gcs.errors import ListTarget, http_error

TARGET = ListTarget("http://127.0.0.1:1", "photos", "sa@p.iam.gserviceaccount.com")


def test_429_is_resource_exhausted_with_a_retry_delay() -> None:
    error = http_error(429, TARGET, what="storage.objects.list")
    assert isinstance(error, ResourceExhausted)
    assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "GCS_THROTTLED")
    assert error.retry_after is not None and error.retry_after > 0


def test_503_stays_unavailable() -> None:
    error = http_error(503, TARGET, what="storage.objects.list")
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "GCS_UNAVAILABLE")
