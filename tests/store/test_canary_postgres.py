"""The canary over every RPC on a PostgreSQL store (issue 14): after the whole case table
(tests/core/canary_cases.py) has run, then VACUUM FULL and CHECKPOINT, no form of the
canary is in any file of the PostgreSQL data directory (heap, indexes, WAL, logs), in the
audit rows, or in anything the RPCs answered.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
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
    run_all,
    scan_files,
    uncovered,
)
from core.conftest import aws_env
from core.secrets_fixtures import KINDS

from bucketvault.testing.emulators import required, start_moto
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.ports import free_port
from bucketvault.testing.postgres import EmbeddedPostgres
from bucketvault.testing.server import start_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with required(start_moto()) as moto:
        yield moto.url


def test_canary_absent_from_postgres_after_vacuum_full(
    tmp_path: Path, embedded_pg: EmbeddedPostgres, moto_url: str
) -> None:
    canary = "CANARY" + secrets.token_hex(8)
    forms = canary_forms(canary)
    world = World(canary, moto_url, f"http://127.0.0.1:{free_port()}")
    uri = embedded_pg.create_database("canary")
    env = {**aws_env(moto_url), **canary_env(world), "BUCKETVAULT_STORE": uri}
    with (
        # Local providers (the real kinds' specs at the provider seam): every kind's
        # secret registers, so every kind's ciphertext is in the tables searched.
        start_server(
            tmp_path, env=env, principals=PRINCIPALS, providers=local_providers(LISTED)
        ) as srv,
        driver(srv.address, {"admin": srv.admin_token, **srv.tokens}, world) as d,
    ):
        run_all(d)
    assert not uncovered(d), uncovered(d)
    assert set(world.credentials) == set(KINDS)
    found = leaks(d)
    assert not found, "\n".join(found)

    # A control the search must find: a marker stored in plain text in the same database.
    control = "CONTROL" + secrets.token_hex(8)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE canary_control (t text)")
        conn.execute("INSERT INTO canary_control VALUES (%s)", (control,))
        rows = conn.execute("SELECT * FROM audit").fetchall()
        stored = conn.execute("SELECT * FROM credentials").fetchall()
        # Rewrite every table (dead tuples of updates and revocations included) and
        # flush it all to the data files, so what is on disk is what we search.
        conn.execute("VACUUM FULL")
        conn.execute("CHECKPOINT")
        data_dir = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
    assert len(rows) > 100 and len(stored) >= len(KINDS)
    assert found_in(repr(rows).encode() + repr(stored).encode(), forms) == []
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any("pg_wal" in p.parts for p in files) and any("base" in p.parts for p in files)
    assert scan_files(files, [control.encode()]), "the search must see the table files"
    assert scan_files(files, forms) == {}
