"""SignURLs' compact reply: the SDK unpacks it into the same SignedURL objects, and a
request without the flag (an old client) still gets the per-URL messages."""

from __future__ import annotations

from pathlib import Path

from core.secrets_fixtures import sample

from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import start_server
from bucketvault.v1 import common_pb2, signer_pb2

KEYS = ["a.jpg", "dir/b c.png", "é+.txt"]


def test_compact_and_full_replies_carry_the_same_urls(tmp_path: Path) -> None:
    with start_server(tmp_path, providers=local_providers()) as srv:
        c = srv.client()
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
        mount = c.create_mount(
            "acme",
            name="m",
            bucket="b",
            credential_id=cred.credential_id,
            allowed_methods=("GET", "PUT"),
        )
        for method in ("GET", "PUT"):
            compact = c.sign_urls("acme", mount.mount_id, KEYS, method=method, ttl_seconds=300)
            full = c.sign_urls(
                "acme", mount.mount_id, KEYS, method=method, ttl_seconds=300, compact=False
            )
            assert compact == full
            assert [u.key for u in compact] == KEYS
        # On the wire: the old form unless asked, the compact one when asked.
        request = signer_pb2.SignURLsRequest(
            tenant="acme", mount_id=mount.mount_id, keys=KEYS, method=common_pb2.METHOD_GET
        )
        old = c.signer.SignURLs(request, metadata=c._metadata)
        assert len(old.urls) == len(KEYS) and not old.compact_urls
        request.compact = True
        new = c.signer.SignURLs(request, metadata=c._metadata)
        assert not new.urls and list(new.compact_urls) == [u.url for u in old.urls]
        assert new.expires_at == old.urls[0].expires_at
