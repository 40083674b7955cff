"""The canary over every RPC (issue 14): a secret marker registered in every credential
kind never appears in a response's bytes, a status's details or trailing metadata, an
exception repr, the logs at DEBUG or the server's stderr, /metrics, the audit rows or the
SIEM file, nor the raw bytes of the SQLite file, its -wal and -shm (read while the server
runs and after it stops). The PostgreSQL twin is tests/store/test_canary_postgres.py.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from core.canary_cases import (
    LISTED,
    PRINCIPALS,
    World,
    canary_env,
    canary_forms,
    driver,
    found_in,
    leaks,
    missing_cases,
    rpcs_in_descriptors,
    run_all,
    scan_files,
    uncovered,
)
from core.conftest import aws_env, free_port
from core.secrets_fixtures import KINDS

from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import start_server


def test_every_rpc_has_a_canary_case() -> None:
    # A new RPC fails here until tests/core/canary_cases.py CASES drives it.
    assert not missing_cases(), f"add canary cases for {sorted(missing_cases())}"
    assert len(rpcs_in_descriptors()) >= 22


def test_canary_forms_are_searched() -> None:
    # The search must be able to fail: each form is found where it is planted.
    forms = canary_forms("CANARYabc123")
    assert b"CANARYabc123" in forms and b"Q0FOQVJZYWJjMTIz" in forms
    assert b"43414e415259616263313233" in forms
    for form in forms:
        assert found_in(b"xx" + form + b"yy", forms)


# "real": the cloud providers as they run (STS on moto; the rest fail fast on a dead
# port, so AZURE_SHARED_KEY and AZURE_SERVICE_PRINCIPAL are refused at registration).
# "local": in-process providers at the provider seam, with the real kinds' specs, so
# every kind's secret is parsed, stored encrypted, decrypted and signed with.
@pytest.mark.parametrize("providers", ["real", "local"])
def test_canary_absent_from_every_rpc_and_the_sqlite_files(
    providers: str,
    tmp_path: Path,
    moto_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    canary = "CANARY" + secrets.token_hex(8)
    forms = canary_forms(canary)
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: fast, offline failures
    world = World(canary, moto_url, dead)
    jsonl = tmp_path / "audit.jsonl"
    env = {
        **aws_env(moto_url),
        "BUCKETVAULT_AUDIT_JSONL": str(jsonl),
        **canary_env(world),
    }
    fakes = local_providers(LISTED) if providers == "local" else None
    with start_server(tmp_path, env=env, principals=PRINCIPALS, providers=fakes) as srv:
        with driver(srv.address, {"admin": srv.admin_token, **srv.tokens}, world) as d:
            run_all(d)
        assert srv.service is not None and srv.service.metrics_server is not None
        with urllib.request.urlopen(srv.service.metrics_server.url, timeout=5) as response:
            metrics = response.read()
        db = srv.data_dir / "bucketvault.sqlite"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            audit_rows = repr(conn.execute("SELECT * FROM audit").fetchall()).encode()
        db_files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        assert db_files[1].exists(), "the store runs in WAL mode: its -wal must be searched"
        live = scan_files(db_files, forms)
        # The control: the same search finds what the store keeps in plain text.
        assert scan_files(db_files, [b"signer.sign"]), "the search must see the audit rows"
    after = scan_files(list(srv.data_dir.iterdir()), forms)
    out, err = capfd.readouterr()

    # The suite reached every RPC on both paths and every kind that registers offline.
    assert not uncovered(d), uncovered(d)
    registered = set(world.credentials)
    if providers == "local":
        assert registered == set(KINDS)
    else:
        assert {"AWS_ROLE", "S3_ACCESS_KEY", "GCS_SERVICE_ACCOUNT", "GCS_HMAC", "AZURE_SAS"} <= (
            registered
        )
    assert "SignerService/ListPrefix" in {rpc for rpc, _, _ in d.responses}
    assert len(audit_rows) > 1000 and b"signer.sign" in metrics + audit_rows

    found = leaks(d)
    assert not found, "\n".join(found)
    assert live == {}, "database files while serving"
    assert after == {}, "data directory after stop"
    for where, blob in {
        "logs": caplog.text.encode(),
        "stdout": out.encode(),
        "stderr": err.encode(),
        "metrics": metrics,
        "audit rows": audit_rows,
        "siem": jsonl.read_bytes(),
    }.items():
        assert found_in(blob, forms) == [], where
