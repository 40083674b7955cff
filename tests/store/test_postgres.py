"""What only the PostgreSQL backend has to get right: connection loss, racing migrations."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest

from bucketvault.errors import Unavailable
from bucketvault.store import open_store
from bucketvault.store.migrations import load_migrations
from bucketvault.store.postgres import PostgresStore
from bucketvault.testing.postgres import EmbeddedPostgres

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_open_store_picks_postgres(embedded_pg: EmbeddedPostgres) -> None:
    s = open_store(embedded_pg.create_database())
    try:
        assert isinstance(s, PostgresStore)
        assert s.ensure_external_id("acme", "e", T0) == "e"
    finally:
        s.close()


def test_lost_connection_is_unavailable_then_recovers(embedded_pg: EmbeddedPostgres) -> None:
    uri = embedded_pg.create_database()
    s = PostgresStore(uri)
    try:
        assert s.ensure_external_id("acme", "e", T0) == "e"
        dbname = psycopg.conninfo.conninfo_to_dict(uri)["dbname"]
        with psycopg.connect(embedded_pg.admin_uri(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        assert killed and all(k[0] for k in killed)
        with pytest.raises(Unavailable) as err:
            s.ensure_external_id("acme", "other", T0)
        assert err.value.reason == "STORE_UNAVAILABLE"
        assert err.value.__context__ is None and err.value.__cause__ is None
        # The broken connection was dropped from the pool; the next call reconnects.
        assert s.ensure_external_id("acme", "other", T0) == "e"
    finally:
        s.close()


def test_unreachable_server_is_unavailable(tmp_path: object) -> None:
    with pytest.raises(Unavailable):
        PostgresStore("postgresql://postgres@/nodb?host=/nonexistent-socket-dir")


def test_replicas_migrating_at_once_apply_each_file_once(
    embedded_pg: EmbeddedPostgres,
) -> None:
    uri = embedded_pg.create_database()
    barrier = threading.Barrier(4)

    def start(_: int) -> None:
        barrier.wait()
        PostgresStore(uri).close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(start, range(4)))
    with psycopg.connect(uri) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in load_migrations("postgres")]
