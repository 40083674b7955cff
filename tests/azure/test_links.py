"""Stable links against Azurite: CreateLink over gRPC, the HTTP listener's redirect
followed to a SAS URL, through a rebind and the credential's revocation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.azurite_support import ACCOUNT, ACCOUNT_KEY, Azurite, sdk_service, unique
from azure.storage.blob import ContainerClient

from bucketvault.testing.server import start_server

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    client = sdk_service(azurite.account_url).create_container(unique())
    client.upload_blob("photos/a.jpg", b"AAA")
    client.upload_blob("photos/set/b.jpg", b"BBB")
    yield client
    client.delete_container()


def test_links_open_azure_blobs_through_rotation(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    env = {"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0"}
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        doc = {
            "account_url": azurite.account_url,
            "account_name": ACCOUNT,
            "account_key": ACCOUNT_KEY,
        }
        first = c.register_credential("acme", "AZURE_SHARED_KEY", doc, display_name="one")
        m = c.create_mount(
            "acme",
            name="m",
            bucket=container.container_name,
            credential_id=first.credential_id,
            prefix="photos/",
            max_ttl_seconds=3600,
        )
        link = c.create_link("acme", m.mount_id, "photos/a.jpg")
        base = c.create_link("acme", m.mount_id, prefix="photos/set/", whole_prefix=True)
        redirect = requests.get(link.url, timeout=10, allow_redirects=False)
        assert redirect.status_code == 302 and "sig=" in redirect.headers["Location"]
        assert redirect.headers["Cache-Control"].startswith("private, max-age=")
        assert requests.get(link.url, timeout=10).content == b"AAA"
        assert requests.get(base.url + "photos/set/b.jpg", timeout=10).content == b"BBB"
        assert requests.get(base.url + "photos/a.jpg", timeout=10).status_code == 404

        second = c.register_credential("acme", "AZURE_SHARED_KEY", doc, display_name="two")
        c.rebind_mount("acme", m.mount_id, second.credential_id, m.version)
        c.revoke_credential("acme", first.credential_id)
        assert requests.get(link.url, timeout=10).content == b"AAA"

        c.revoke_credential("acme", second.credential_id)
        gone = requests.get(link.url, timeout=10)
        assert gone.status_code == 404 and gone.text == "not found\n"
        outcomes = [
            (r.outcome, r.reason)
            for r in c.query_audit("acme")
            if r.action == "link.open" and r.principal == f"link:{link.link_id}"
        ]
        assert outcomes == [("ok", ""), ("ok", ""), ("ok", ""), ("error", "CREDENTIAL_REVOKED")]
