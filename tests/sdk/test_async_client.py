"""AsyncBucketVaultClient against a real in-process server: the main calls, and the
same answers (and errors) as the sync client."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.client import AsyncBucketVaultClient
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import RunningServer, start_server

KEYS = ["a.jpg", "dir/b.png"]


async def _main_calls(srv: RunningServer) -> None:
    async with AsyncBucketVaultClient(srv.address, srv.admin_token) as c:
        key = await c.registration_key()
        sealed = await c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
        assert sealed.key_id == key.key_id
        cred = await c.register_sealed("acme", "GCS_HMAC", sealed, display_name="hmac")
        assert (await c.get_credential("acme", cred.credential_id)).display_name == "hmac"
        mounts = []
        for i in range(3):
            mounts.append(
                await c.create_mount(
                    "acme",
                    name=f"m{i}",
                    bucket="b",
                    credential_id=cred.credential_id,
                    max_ttl=timedelta(hours=1),
                )
            )
        assert mounts[0].policy.max_ttl_seconds == 3600
        listed = [m.mount_id async for m in c.list_mounts("acme", page_size=2)]
        assert sorted(listed) == sorted(m.mount_id for m in mounts)
        mount = mounts[0]
        one = await c.sign_url("acme", mount.mount_id, "a.jpg", ttl=timedelta(minutes=15))
        assert one.url and one.key == "a.jpg"
        batch = await c.sign_urls("acme", mount.mount_id, KEYS, ttl_seconds=300)
        assert [u.key for u in batch] == KEYS
        pages = [p async for p in c.list_prefix("acme", mount.mount_id, sign_ttl_seconds=60)]
        assert [e.key for p in pages for e in p.entries] == ["a.jpg"]
        creds = [x.credential_id async for x in c.list_credentials("acme", page_size=1)]
        assert creds == [cred.credential_id]
        actions = {r.action async for r in c.query_audit("acme")}
        assert "vault.register" in actions
        assert (await c.verify_audit()).ok
        with pytest.raises(errors.NotFound) as caught:
            await c.get_mount("acme", "mnt_missing")
        assert caught.value.reason == "MOUNT_NOT_FOUND"
        with pytest.raises(ValueError, match="not both"):
            await c.sign_url("acme", mount.mount_id, "a.jpg", ttl_seconds=5, ttl=timedelta(1))


def test_async_client_main_calls(tmp_path: Path) -> None:
    with start_server(tmp_path, providers=local_providers()) as srv:
        asyncio.run(_main_calls(srv))


def test_both_clients_raise_the_same_error(tmp_path: Path) -> None:
    async def async_error() -> errors.BucketVaultError:
        async with AsyncBucketVaultClient(srv.address, "bv_wrong") as c:
            try:
                await c.get_mount("acme", "mnt_x")
            except errors.BucketVaultError as exc:
                return exc
        raise AssertionError("no error")

    with start_server(tmp_path, providers=local_providers()) as srv:
        with pytest.raises(errors.BucketVaultError) as sync_error:
            srv.client("bv_wrong").get_mount("acme", "mnt_x")
        aio = asyncio.run(async_error())
        assert type(aio) is type(sync_error.value) is errors.Unauthenticated
        assert aio.reason == sync_error.value.reason
