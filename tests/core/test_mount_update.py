"""UpdateMount, DeleteMount and CheckMount of a mount not created yet, through the real
server: compare-and-swap on the version, CreateMount's validation, name uniqueness, the
tenant-wide grant, audit records with old and new values, and NOT_FOUND after a delete."""

from __future__ import annotations

import json
import sqlite3
import threading

import grpc
import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.cli.main import main
from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import RunningServer
from bucketvault.v1 import audit_pb2, common_pb2, vault_pb2


def _records(server: RunningServer, action: str) -> list[audit_pb2.AuditRecord]:
    return list(server.client(server.tokens["auditor"]).query_audit("acme", action=action))


def _mount(c: BucketVaultClient, name: str = "m") -> vault_pb2.Mount:
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC", name))
    return c.create_mount(
        "acme", name=name, bucket="b", prefix="img/", credential_id=cred.credential_id
    )


def _policy(ttl: int, *methods: str) -> vault_pb2.MountPolicy:
    return vault_pb2.MountPolicy(
        max_ttl_seconds=ttl,
        allowed_methods=[common_pb2.Method.Value("METHOD_" + m) for m in methods],
    )


def test_update_changes_name_and_policy_by_compare_and_swap(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    renamed = c.update_mount("acme", mount.mount_id, 1, name="photos")
    assert (renamed.name, renamed.version) == ("photos", 2)
    assert renamed.policy == mount.policy
    updated = c.update_mount("acme", mount.mount_id, 2, policy=_policy(600, "GET", "PUT"))
    assert updated.version == 3 and updated.name == "photos"
    assert updated.policy.max_ttl_seconds == 600
    assert set(updated.policy.allowed_methods) == {common_pb2.METHOD_GET, common_pb2.METHOD_PUT}
    # The location and the credential are not UpdateMount's to change.
    assert (updated.bucket, updated.prefix, updated.credential_id) == (
        mount.bucket,
        mount.prefix,
        mount.credential_id,
    )
    with pytest.raises(errors.Aborted) as exc:
        c.update_mount("acme", mount.mount_id, 2, name="again")
    assert exc.value.reason == "VERSION_MISMATCH"
    shown = c.get_mount("acme", mount.mount_id)
    assert (shown.name, shown.version, shown.policy.max_ttl_seconds) == ("photos", 3, 600)


def test_update_validates_as_create_does_and_keeps_names_unique(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    _mount(c, "taken")
    bad = [
        ({"name": "no spaces"}, "name"),
        ({"policy": _policy(700000)}, "policy.max_ttl_seconds"),
        ({}, "policy"),
    ]
    for fields, field in bad:
        with pytest.raises(errors.InvalidArgument) as exc:
            c.update_mount("acme", mount.mount_id, 1, **fields)  # type: ignore[arg-type]
        assert exc.value.field == field
    with pytest.raises(errors.AlreadyExists) as taken:
        c.update_mount("acme", mount.mount_id, 1, name="taken")
    assert taken.value.reason == "MOUNT_NAME_TAKEN"
    with pytest.raises(errors.InvalidArgument) as missing:
        c.update_mount("acme", mount.mount_id, 0, name="x")
    assert missing.value.field == "expected_version"
    with pytest.raises(errors.NotFound):
        c.update_mount("acme", "mnt_" + "0" * 20, 1, name="x")
    # Nothing refused was written.
    assert c.get_mount("acme", mount.mount_id).version == 1


def test_concurrent_updates_one_wins(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    outcomes: list[str] = []
    lock = threading.Lock()

    def update(i: int) -> None:
        try:
            c.update_mount("acme", mount.mount_id, 1, name=f"n{i}")
            result = "ok"
        except errors.Aborted:
            result = "aborted"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["aborted"] * 4 + ["ok"]
    assert c.get_mount("acme", mount.mount_id).version == 2


def test_update_is_audited_with_old_and_new_values(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    c.update_mount("acme", mount.mount_id, 1, name="photos", policy=_policy(60, "HEAD"))
    (record,) = _records(server, "vault.update_mount")
    assert record.outcome == "ok" and record.mount_id == mount.mount_id
    assert (record.detail["previous_name"], record.detail["name"]) == ("m", "photos")
    assert record.detail["policy"] == (
        "max_ttl=60;methods=HEAD;credential_lifetime=false;stable_urls=true"
    )
    ttl = mount.policy.max_ttl_seconds
    assert record.detail["previous_policy"].startswith(f"max_ttl={ttl};methods=GET,HEAD;")


def test_delete_is_compare_and_swap_and_signing_then_finds_nothing(
    server: RunningServer,
) -> None:
    c = server.client()
    mount = _mount(c)
    c.update_mount("acme", mount.mount_id, 1, name="photos")
    with pytest.raises(errors.Aborted) as stale:
        c.delete_mount("acme", mount.mount_id, 1)
    assert stale.value.reason == "VERSION_MISMATCH"
    gone = c.delete_mount("acme", mount.mount_id, 2)
    assert (gone.mount_id, gone.name, gone.version) == (mount.mount_id, "photos", 2)
    for call in (
        lambda: c.get_mount("acme", mount.mount_id),
        lambda: c.sign_url("acme", mount.mount_id, "img/a.jpg"),
        lambda: c.sign_urls("acme", mount.mount_id, ["img/a.jpg"]),
        lambda: c.create_link("acme", mount.mount_id, "img/a.jpg"),
        lambda: c.delete_mount("acme", mount.mount_id, 2),
        lambda: c.update_mount("acme", mount.mount_id, 2, name="x"),
    ):
        with pytest.raises(errors.NotFound) as exc:
            call()
        assert exc.value.reason == "MOUNT_NOT_FOUND"
    assert list(c.list_mounts("acme")) == []
    # The name is free again; the new mount is another mount (another id).
    again = c.create_mount("acme", name="photos", bucket="b", credential_id=mount.credential_id)
    assert again.mount_id != mount.mount_id


def test_delete_keeps_the_audit_history(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    c.delete_mount("acme", mount.mount_id, 1)
    (record,) = _records(server, "vault.delete_mount")
    assert record.outcome == "ok" and record.mount_id == mount.mount_id
    assert record.credential_id == mount.credential_id
    assert (record.detail["name"], record.detail["bucket"], record.detail["prefix"]) == (
        "m",
        "b",
        "img/",
    )
    created = _records(server, "vault.create_mount")
    assert [r.mount_id for r in created] == [mount.mount_id]
    assert server.client(server.tokens["auditor"]).verify_audit().ok


def test_a_signer_or_another_tenants_operator_can_neither_update_nor_delete(
    server: RunningServer,
) -> None:
    mount = _mount(server.client())
    for token in ("viewer", "globex-ops"):
        other = server.client(server.tokens[token])
        with pytest.raises(errors.PermissionDenied):
            other.update_mount("acme", mount.mount_id, 1, name="x")
        with pytest.raises(errors.PermissionDenied):
            other.delete_mount("acme", mount.mount_id, 1)
    assert server.client().get_mount("acme", mount.mount_id).version == 1


def test_rebind_to_another_cloud_without_a_location_is_still_refused(
    server: RunningServer,
) -> None:
    c = server.client()
    mount = _mount(c)
    azure = c.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"))
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.rebind_mount("acme", mount.mount_id, azure.credential_id, 1)
    assert exc.value.reason == "KIND_MISMATCH"
    assert c.get_mount("acme", mount.mount_id).version == 1


def test_a_move_validates_its_location_and_is_compare_and_swap(server: RunningServer) -> None:
    c = server.client()
    mount = _mount(c)
    azure = c.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"))
    cid = azure.credential_id
    bad = [
        ({"prefix": "img/"}, "location.bucket"),
        ({"bucket": "c", "prefix": "/abs"}, "location.prefix"),
        ({"bucket": "c", "region": "US EAST"}, "location.region"),
        ({"bucket": "c", "endpoint": "ftp://x"}, "location.endpoint"),
    ]
    for fields, field in bad:
        with pytest.raises(errors.InvalidArgument) as exc:
            c.rebind_mount("acme", mount.mount_id, cid, 1, **fields)  # type: ignore[arg-type]
        assert exc.value.field == field
    with pytest.raises(errors.Aborted):
        c.rebind_mount("acme", mount.mount_id, cid, 5, bucket="c", prefix="img/")
    moved = c.rebind_mount("acme", mount.mount_id, cid, 1, bucket="c", prefix="img/")
    assert (moved.mount_id, moved.bucket, moved.prefix, moved.credential_id, moved.version) == (
        mount.mount_id,
        "c",
        "img/",
        cid,
        2,
    )
    # The refusals above are recorded too, as errors; the move is the one success.
    (record,) = [r for r in _records(server, "vault.rebind_mount") if r.outcome == "ok"]
    assert record.detail["moved"] == "true"
    assert (record.detail["previous_bucket"], record.detail["bucket"]) == ("b", "c")
    assert (record.detail["previous_credential_id"], record.detail["credential_id"]) == (
        mount.credential_id,
        cid,
    )


def test_checking_a_mount_not_created_yet_writes_nothing_and_needs_the_tenant(
    server: RunningServer,
) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    cid = cred.credential_id
    with pytest.raises(errors.InvalidArgument) as exc:
        c.check_new_mount("acme", credential_id=cid, bucket="")
    assert exc.value.field == "location.bucket"
    with pytest.raises(errors.NotFound) as missing:
        c.check_new_mount("acme", credential_id="cred_nope", bucket="b")
    assert missing.value.reason == "CREDENTIAL_NOT_FOUND"
    both = vault_pb2.CheckMountRequest(
        tenant="acme",
        mount_id="mnt_" + "0" * 20,
        credential_id=cid,
        location=vault_pb2.MountLocation(bucket="b"),
    )
    with pytest.raises(grpc.RpcError) as raw:
        c.vault.CheckMount(both, metadata=(("authorization", f"Bearer {server.admin_token}"),))
    assert raw.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    for token in ("viewer", "globex-ops"):
        with pytest.raises(errors.PermissionDenied):
            server.client(server.tokens[token]).check_new_mount(
                "acme", credential_id=cid, bucket="b"
            )
    # The offline core has no cloud to ask: the checks got as far as the provider.
    with pytest.raises(errors.Unimplemented):
        c.check_new_mount("acme", credential_id=cid, bucket="b", prefix="img/")
    c.revoke_credential("acme", cid)
    with pytest.raises(errors.FailedPrecondition) as revoked:
        c.check_new_mount("acme", credential_id=cid, bucket="b")
    assert revoked.value.reason == "CREDENTIAL_REVOKED"
    assert list(c.list_mounts("acme")) == []
    with sqlite3.connect(server.data_dir / "bucketvault.sqlite") as db:
        assert db.execute("SELECT count(*) FROM mounts").fetchone() == (0,)


def _cli(
    server: RunningServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    token_file = server.data_dir / "admin.token"
    code = main(["--address", server.address, "--token-file", str(token_file), "--json", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_updates_moves_checks_and_deletes_mounts_by_name(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    c = server.client()
    mount = c.create_mount(
        "acme",
        name="photos",
        bucket="b",
        credential_id=c.register_credential(
            "acme", "GCS_HMAC", sample("GCS_HMAC"), display_name="gcs-key"
        ).credential_id,
        allowed_methods=["GET", "HEAD", "PUT"],
    )
    c.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"), display_name="azure-key")
    at = ("--tenant", "acme")
    code, out, err = _cli(
        server, capsys, "mounts", "update", *at, "--id", "photos", "--expected-version", "1",
        "--name", "pics", "--max-ttl", "15m",
    )  # fmt: skip
    assert code == 0, err
    updated = json.loads(out)
    assert (updated["name"], updated["version"]) == ("pics", 2)
    # Only the flag given changed: the methods stay.
    assert updated["policy"]["max_ttl_seconds"] == 900
    assert updated["policy"]["allowed_methods"] == ["GET", "HEAD", "PUT"]
    code, _, err = _cli(
        server, capsys, "mounts", "update", *at, "--id", "pics", "--expected-version", "1",
        "--name", "stale",
    )  # fmt: skip
    assert code != 0 and "VERSION_MISMATCH" in err
    code, out, err = _cli(
        server, capsys, "mounts", "rebind", *at, "--id", "pics", "--credential", "azure-key",
        "--expected-version", "2", "--bucket", "container", "--prefix", "img/",
    )  # fmt: skip
    assert code == 0, err
    moved = json.loads(out)
    assert (moved["mount_id"], moved["bucket"], moved["prefix"]) == (
        mount.mount_id,
        "container",
        "img/",
    )
    # A prospective check reaches the (offline) provider: UNIMPLEMENTED, nothing written.
    code, _, err = _cli(
        server, capsys, "mounts", "check", *at, "--credential", "gcs-key", "--bucket", "b",
    )  # fmt: skip
    assert code != 0 and "PROVIDER_UNAVAILABLE" in err
    code, _, err = _cli(server, capsys, "mounts", "check", *at)
    assert code == 2 and "--credential and --bucket" in err
    code, out, err = _cli(
        server, capsys, "mounts", "delete", *at, "--id", "pics", "--expected-version", "3"
    )
    assert code == 0, err
    assert json.loads(out)["mount_id"] == mount.mount_id
    assert list(c.list_mounts("acme")) == []
