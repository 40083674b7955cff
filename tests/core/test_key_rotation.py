"""KEK rotation and registration key rotation, through the real server and the CLI."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.cli.main import main
from bucketvault.clock import FrozenClock
from bucketvault.crypto.envelope import Envelope
from bucketvault.crypto.keys import KeyRing, key_provider_from_uri
from bucketvault.store.sqlite import SqliteStore
from bucketvault.testing.fakes import local_providers, offline_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2


def _envelopes(data_dir: Path) -> dict[str, bytes]:
    store = SqliteStore(data_dir / "bucketvault.sqlite")
    try:
        return {record_id: blob for _, record_id, blob in store.iter_envelopes()}
    finally:
        store.close()


def _keys_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *a: str,
) -> tuple[int, str]:
    for name in ("BUCKETVAULT_KEK", "BUCKETVAULT_KEK_PREVIOUS", "BUCKETVAULT_STORE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main(["--json", "keys", *a])
    return code, capsys.readouterr().out


def _setup(srv: RunningServer, n: int) -> tuple[list[str], list[str]]:
    c = srv.client()
    creds, mounts = [], []
    for i in range(n):
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name=f"c{i}")
        mount = c.create_mount("acme", name=f"m{i}", bucket="b", credential_id=cred.credential_id)
        creds.append(cred.credential_id)
        mounts.append(mount.mount_id)
    return creds, mounts


def test_kek_rotation_rewraps_everything_while_signing_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_uri, new_uri = f"file://{tmp_path / 'old.key'}", f"file://{tmp_path / 'new.key'}"
    old_id = key_provider_from_uri(old_uri, {}).kek_id
    new_id = key_provider_from_uri(new_uri, {}).kek_id
    data_dir = tmp_path / "data"
    providers = local_providers()

    # 1. Records written under the old KEK; one credential revoked (no envelope left).
    with start_server(
        tmp_path, env={"BUCKETVAULT_KEK": old_uri}, data_dir=data_dir, providers=providers
    ) as srv:
        creds, mounts = _setup(srv, 24)
        srv.client().revoke_credential("acme", creds[-1], "rotation test")
        live_mounts = mounts[:-1]
    before = _envelopes(data_dir)
    old_reader = Envelope(KeyRing(key_provider_from_uri(old_uri, {})))
    assert {old_reader.kek_id_of(b) for b in before.values()} == {old_id}
    rotating = {"BUCKETVAULT_KEK": new_uri, "BUCKETVAULT_KEK_PREVIOUS": old_uri}

    # 2. Restarted with the new KEK current and the old one previous.
    with start_server(tmp_path, env=rotating, data_dir=data_dir, providers=providers) as srv:
        code, out = _keys_cli(monkeypatch, capsys, rotating, "status", "--data-dir", str(data_dir))
        rows = {r["kek"]: r for r in json.loads(out)}
        assert code == 0
        assert rows[old_id]["credentials"] == 23 and rows[old_id]["service_keys"] >= 4
        assert rows[new_id]["configured"] == "current"

        signer = srv.client()
        stop = threading.Event()
        calls, failures = [0], []

        def sign_forever() -> None:
            while not stop.is_set():
                for mount_id in live_mounts:
                    try:
                        signer.sign_url("acme", mount_id, "a.jpg")
                        calls[0] += 1
                    except errors.BucketVaultError as exc:
                        failures.append(exc)

        threads = [threading.Thread(target=sign_forever) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            code, out = _keys_cli(
                monkeypatch,
                capsys,
                rotating,
                "rotate-kek",
                "--to",
                new_uri,
                "--data-dir",
                str(data_dir),
                "--batch",
                "3",
                "--pause",
                "0.05",
            )
            during = calls[0]
            # A registration during the rotation is wrapped under the new KEK.
            extra = srv.client().register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert failures == []
        assert during > 0, "signing ran while the re-wrap ran"
        result = json.loads(out)
        assert code == 0 and result["failed"] == []
        assert result["rewrapped"] == len(before)

        code, out = _keys_cli(monkeypatch, capsys, rotating, "status", "--data-dir", str(data_dir))
        rows = {r["kek"]: r for r in json.loads(out)}
        assert rows[old_id]["credentials"] == 0 and rows[old_id]["service_keys"] == 0
        assert rows[old_id]["note"].startswith("unused: may be removed")

    after = _envelopes(data_dir)
    assert extra.credential_id in after
    reader = Envelope(KeyRing(key_provider_from_uri(new_uri, {})))
    assert {reader.kek_id_of(b) for b in after.values()} == {new_id}
    for record_id, blob in before.items():
        assert after[record_id] != blob
        assert Envelope.ciphertext_of(after[record_id]) == Envelope.ciphertext_of(blob)

    # 3. The old KEK dropped from PREVIOUS: everything still opens.
    with start_server(
        tmp_path, env={"BUCKETVAULT_KEK": new_uri}, data_dir=data_dir, providers=providers
    ) as srv:
        c = srv.client()
        for mount_id in live_mounts:
            assert c.sign_url("acme", mount_id, "a.jpg").url.startswith("https://signed.invalid/")
        c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
        verdict = c.verify_audit(full=True)
        assert verdict.ok, verdict.detail
        code, out = _keys_cli(
            monkeypatch, capsys, {"BUCKETVAULT_KEK": new_uri}, "status", "--data-dir", str(data_dir)
        )
        assert code == 0 and [r["kek"] for r in json.loads(out)] == [new_id]


def test_status_names_records_under_a_kek_that_is_not_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_uri, new_uri = f"file://{tmp_path / 'old.key'}", f"file://{tmp_path / 'new.key'}"
    data_dir = tmp_path / "data"
    with start_server(
        tmp_path, env={"BUCKETVAULT_KEK": old_uri}, data_dir=data_dir, providers=offline_providers()
    ):
        pass
    key_provider_from_uri(new_uri, {})
    code, out = _keys_cli(
        monkeypatch, capsys, {"BUCKETVAULT_KEK": new_uri}, "status", "--data-dir", str(data_dir)
    )
    assert code == 1
    assert [r["configured"] for r in json.loads(out)] == ["current", "no"]
    # Asking never creates a KEK file.
    monkeypatch.delenv("BUCKETVAULT_KEK")
    code = main(["keys", "status", "--data-dir", str(tmp_path / "elsewhere")])
    assert code == 1 and not (tmp_path / "elsewhere" / "kek.key").exists()


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
X25519 = vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM


def test_registration_key_rotation_overlaps_then_refuses(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    data_dir = tmp_path / "data"
    with start_server(
        tmp_path, clock=clock, data_dir=data_dir, providers=offline_providers()
    ) as srv:
        assert srv.service is not None
        c = srv.client()
        old = c.registration_key(X25519)
        sealed = [c.seal("acme", "GCS_HMAC", sample("GCS_HMAC")) for _ in range(3)]
        assert {s.key_id for s in sealed} == {old.key_id}

        rotated = srv.service.app.vault.service_keys.rotate_registration_keys(timedelta(days=7))
        by_suite = {r.suite: r for r in rotated}
        x = by_suite["X25519_SHA256_AES256GCM"]
        assert x.previous_key_id == old.key_id
        assert x.previous_accepted_until == T0 + timedelta(days=7)
        new = srv.client().registration_key(X25519)
        assert new.key_id == x.new_key_id != old.key_id
        assert (
            srv.client()
            .registration_key(vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM)
            .key_id
            == by_suite["MLKEM768_X25519_SHA256_AES256GCM"].new_key_id
        )

        # Inside the window: a blob sealed to the previous key is accepted.
        assert (
            c.register_sealed("acme", "GCS_HMAC", sealed[0]).state
            == vault_pb2.CREDENTIAL_STATE_ACTIVE
        )
        clock.advance(timedelta(days=7) - timedelta(seconds=1))
        assert (
            c.register_sealed("acme", "GCS_HMAC", sealed[1]).state
            == vault_pb2.CREDENTIAL_STATE_ACTIVE
        )

    # The window is stored, so a restart does not move it.
    with start_server(
        tmp_path, clock=clock, data_dir=data_dir, providers=offline_providers()
    ) as srv:
        c = srv.client()
        assert c.registration_key(X25519).key_id == new.key_id
        clock.advance(timedelta(seconds=1))
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.register_sealed("acme", "GCS_HMAC", sealed[2])
        assert exc.value.reason == "REGISTRATION_KEY_RETIRED"
        assert "overlap window ended" in exc.value.message
        # Sealing to the current key works.
        assert c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC")).state == (
            vault_pb2.CREDENTIAL_STATE_ACTIVE
        )


def test_rotate_registration_key_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    with start_server(tmp_path, data_dir=data_dir, providers=offline_providers()) as srv:
        c = srv.client()
        old = c.registration_key(X25519)
        stale = c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
        code, out = _keys_cli(
            monkeypatch,
            capsys,
            {},
            "rotate-registration-key",
            "--overlap-days",
            "0",
            "--data-dir",
            str(data_dir),
        )
        assert code == 0
        rows = {r["suite"]: r for r in json.loads(out)}
        assert rows["X25519_SHA256_AES256GCM"]["previous_key_id"] == old.key_id
        # The running server serves the new key at once, without a restart.
        fresh = srv.client().registration_key(X25519)
        assert fresh.key_id == rows["X25519_SHA256_AES256GCM"]["key_id"]
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.register_sealed("acme", "GCS_HMAC", stale)
        assert exc.value.reason == "REGISTRATION_KEY_RETIRED"
        # The SDK that cached the old key seals again to the current one, by itself.
        assert c.registration_key(X25519).key_id == old.key_id
        assert c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC")).state == (
            vault_pb2.CREDENTIAL_STATE_ACTIVE
        )
        assert c.registration_key(X25519).key_id == fresh.key_id
