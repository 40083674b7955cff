"""CheckMount's CORS probe against Azurite: Blob service CORS rules set with
set_service_properties let the preflight from their origin through and refuse any
other, with the az storage cors add command to run."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest
from azure.azurite_support import (
    Azurite,
    make_credential,
    make_mount,
    provider,
    sdk_service,
    shared_key_secret,
)
from azure.storage.blob import CorsRule

from bucketvault.models import CredentialKind
from bucketvault.providers.cors import PROBE_NAME, preflight

pytestmark = pytest.mark.azurite

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def restore_cors(azurite: Azurite) -> Iterator[None]:
    """The account's Blob CORS rules (the whole Azurite account's) put back afterwards."""
    service = sdk_service(azurite.account_url)
    before = service.get_service_properties()["cors"]
    yield
    service.set_service_properties(cors=before)


def test_the_configured_origin_passes_and_another_gets_the_az_command(
    azurite: Azurite, restore_cors: None
) -> None:
    service = sdk_service(azurite.account_url)
    service.set_service_properties(cors=[CorsRule([ALLOWED], ["GET", "HEAD"])])
    kind = CredentialKind("AZURE_SHARED_KEY")
    handle = provider().open(make_credential(kind), shared_key_secret(azurite.account_url))
    target = handle.cors_target(make_mount("photos", prefix="img/"))
    assert target.url == f"{azurite.account_url}/photos/img/{PROBE_NAME}"
    ok = preflight(target, ALLOWED)
    assert ok.allowed, ok.detail
    refused = preflight(target, OTHER)
    assert not refused.allowed
    assert "whole Blob service" in refused.detail
    words = shlex.split(refused.suggested_rule)
    assert words[:4] == ["az", "storage", "cors", "add"]
    assert words[words.index("--origins") + 1] == OTHER
    # No rule at all: Azurite, like Azure, refuses the preflight.
    service.set_service_properties(cors=[])
    none = preflight(target, ALLOWED)
    assert not none.allowed
    assert "preflight 403" in none.detail
    assert "preflight 403" in refused.detail
