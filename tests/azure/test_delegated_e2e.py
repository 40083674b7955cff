"""AZURE_DELEGATED end to end through the real gRPC server, HTTPS Azurite and the local
token endpoint: register, mount, SignURL, ListPrefix; the app secret never leaves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.azurite_support import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    TENANT_ID,
    UNCONSENTED_TENANT,
    Azurite,
    Tls,
    TokenEndpoint,
    delegated_env,
    sdk_service,
    unique,
)
from azure.storage.blob import ContainerClient

from bucketvault.clock import SystemClock
from bucketvault.errors import FailedPrecondition
from bucketvault.models import CredentialKind
from bucketvault.providers.registry import build_providers
from bucketvault.testing.server import start_server
from bucketvault.urlpolicy import UrlPolicy

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def container(azurite_oauth: Azurite, tls: Tls) -> Iterator[ContainerClient]:
    client = sdk_service(azurite_oauth.account_url, connection_verify=str(tls.cert))
    created = client.create_container(unique())
    created.upload_blob("photos/a.jpg", b"AAA")
    created.upload_blob("photos/b.jpg", b"BBB")
    yield created
    created.delete_container()


def test_delegated_end_to_end_and_the_secret_never_leaves(
    tmp_path: Path,
    azurite_oauth: Azurite,
    tls: Tls,
    token_endpoint: TokenEndpoint,
    container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    verify = str(tls.cert)
    feed = tmp_path / "audit.jsonl"
    settings = {**delegated_env(token_endpoint, tls), "BUCKETVAULT_AUDIT_JSONL": str(feed)}
    seen: list[str] = []
    with start_server(tmp_path, env=settings) as srv:
        c = srv.client()
        cred = c.register_credential(
            "acme",
            "AZURE_DELEGATED",
            {"account_url": azurite_oauth.account_url, "tenant_id": TENANT_ID},
        )
        seen.append(str(cred))
        assert cred.metadata["application_id"] == APP_CLIENT_ID
        assert cred.metadata["tenant_id"] == TENANT_ID
        m = c.create_mount(
            "acme",
            name="m",
            bucket=container.container_name,
            credential_id=cred.credential_id,
            prefix="photos/",
            max_ttl_seconds=3600,
        )
        url = c.sign_url("acme", m.mount_id, "photos/a.jpg", ttl_seconds=600)
        seen.append(str(url))
        assert "skoid=" in url.url
        assert requests.get(url.url, timeout=10, verify=verify).content == b"AAA"
        pages = list(c.list_prefix("acme", m.mount_id, prefix="photos/", sign_ttl_seconds=60))
        seen.extend(str(p) for p in pages)
        entries = [e for p in pages for e in p.entries]
        assert [e.key for e in entries] == ["photos/a.jpg", "photos/b.jpg"]
        got = [requests.get(e.url, timeout=10, verify=verify).content for e in entries]
        assert got == [b"AAA", b"BBB"]
        # A tenant that has not consented: a clear reason, through the real error mapping.
        with pytest.raises(FailedPrecondition) as info:
            c.register_credential(
                "acme",
                "AZURE_DELEGATED",
                {"account_url": azurite_oauth.account_url, "tenant_id": UNCONSENTED_TENANT},
            )
        assert info.value.reason == "AZURE_APP_NOT_CONSENTED"
        assert f"/{UNCONSENTED_TENANT}/adminconsent?client_id={APP_CLIENT_ID}" in str(info.value)
        seen.append(str(info.value))
        seen.append(str(c.get_credential("acme", cred.credential_id)))
        records = list(c.query_audit("acme"))
        assert len(records) >= 5
        seen.extend(str(r) for r in records)
    # The feed was written (every call above): the check below means something.
    assert cred.credential_id in feed.read_text() and feed.read_text().count("\n") >= 5
    seen.append(feed.read_text())
    seen.append(caplog.text)
    seen.extend(str(r.args) for r in caplog.records)
    assert not [s for s in seen if APP_CLIENT_SECRET in s]


def test_the_registry_built_from_the_environment_gives_the_onboarding(
    tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    registry = build_providers(delegated_env(token_endpoint, tls), SystemClock(), UrlPolicy())
    guide = registry.onboarding(CredentialKind("AZURE_DELEGATED"), "acme")
    assert guide is not None and guide.identity == APP_CLIENT_ID
    assert f"adminconsent?client_id={APP_CLIENT_ID}" in guide.links["admin_consent_url"]
    assert registry.onboarding(CredentialKind("AZURE_SAS"), "acme") is None
