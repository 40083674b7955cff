"""CheckMount's CORS probe for GCS, offline: fake-gcs-server answers every preflight with
Access-Control-Allow-Origin: * whatever the bucket's CORS configuration, so it cannot
stand in for Google here; the URL, the rule text and the verdict on a Google-like answer
(200 without CORS headers when no rule matches) are tested instead."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gcs.gcsutil import HMAC_ACCESS_ID, HMAC_SECRET, make_mount, make_provider, open_handle

from bucketvault.clock import FrozenClock
from bucketvault.models import CredentialKind
from bucketvault.providers.cors import PROBE_NAME, CorsTarget, gcs_how, gcs_rule, preflight

pytestmark = pytest.mark.gcs

ALLOWED = "https://app.example.com"


@pytest.fixture
def google_like() -> Iterator[str]:
    """Answers preflights as GCS's XML API does: CORS headers only for a matching origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_OPTIONS(self) -> None:
            self.send_response(200)
            if self.headers.get("Origin") == ALLOWED:
                self.send_header("Access-Control-Allow-Origin", ALLOWED)
                self.send_header("Access-Control-Allow-Methods", "GET,HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_target_is_the_xml_api_object_url_with_the_gsutil_rule() -> None:
    handle = open_handle(
        make_provider(FrozenClock(datetime(2026, 7, 4, tzinfo=UTC))),
        CredentialKind("GCS_HMAC"),
        {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET},
    )
    target = handle.cors_target(make_mount("photos", prefix="img/"))
    assert target.url == f"https://storage.googleapis.com/photos/img/{PROBE_NAME}"
    assert "gsutil cors set cors.json gs://photos" in target.how
    (rule,) = json.loads(target.rule("https://other.example"))
    assert rule["origin"] == ["https://other.example"]
    assert rule["method"] == ["GET", "HEAD"]
    assert rule["maxAgeSeconds"] == 3600


def test_a_200_without_cors_headers_is_a_refusal_with_the_rule(google_like: str) -> None:
    target = CorsTarget(f"{google_like}/photos/{PROBE_NAME}", gcs_rule, gcs_how("photos"))
    assert preflight(target, ALLOWED).allowed
    refused = preflight(target, "https://other.example")
    assert not refused.allowed
    assert "preflight 200, no Access-Control-Allow-Origin" in refused.detail
    assert json.loads(refused.suggested_rule)[0]["origin"] == ["https://other.example"]


def test_no_answer_is_a_refusal_that_says_so() -> None:
    target = CorsTarget("http://127.0.0.1:1/photos/x", gcs_rule, gcs_how("photos"))
    verdict = preflight(target, ALLOWED, timeout=2)
    assert not verdict.allowed
    assert "got no answer (ConnectionError)" in verdict.detail
