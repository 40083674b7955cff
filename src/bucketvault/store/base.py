"""The Store protocols: everything the service persists, behind one seam, split by role.

Backends: SQLite (embedded default) and PostgreSQL (shared by several replicas).
Every method is one transaction. Secret material reaches the store only as envelope
ciphertext (see crypto/envelope.py); everything else here is non-secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from bucketvault.models import Credential, Mount

if TYPE_CHECKING:  # a runtime import would cycle: the audit package reads this module
    from bucketvault.audit.event import AuditEvent

R = TypeVar("R")
# The chain hash format of rows written now (audit/chain.py; 1 = before migration 0002).
HASH_VERSION = 2


@dataclass(frozen=True)
class ServiceKeyRecord:
    """A key the service itself owns (registration HPKE keys, the fingerprint key).

    ``envelope`` is the private/secret part, envelope-encrypted under the KEK.
    """

    key_id: str
    purpose: str  # "registration" | "fingerprint"
    suite: str  # HPKE suite name for registration keys, "" otherwise
    public_key: bytes
    envelope: bytes = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True)
class LinkRevocation:
    """One row of the link revocation list."""

    link_id: str
    tenant: str
    mount_id: str
    revoked_at: datetime
    revoked_by: str
    reason: str = ""


@dataclass(frozen=True)
class StoredCredential:
    credential: Credential
    # Envelope ciphertext of the secret JSON; None once revoked (crypto-shredded).
    envelope: bytes | None = field(repr=False)
    idempotency_key: str = ""
    # Hash of the registration request (kind, display name, secret fingerprint): a reused
    # idempotency key with a different request is refused, not silently answered.
    request_hash: str = ""


@dataclass(frozen=True)
class AuditRow:
    """An audit event at its place in one writer's hash chain."""

    writer_id: str
    seq: int
    prev_hash: str
    hash: str
    event: AuditEvent
    # Which canonical body the hash covers (audit/chain.py).
    v: int = HASH_VERSION


@dataclass(frozen=True)
class AuditCheckpoint:
    """A signed statement that one writer's row at ``seq`` has ``hash``.

    kind: "head" (the writer's head, every minute and at shutdown), "verified" (a
    verification passed through seq) or "pruned" (rows through seq were archived and
    deleted; the chain resumes after it). Only the signature makes it worth anything:
    whoever can write the database can write this table too.
    """

    writer_id: str
    seq: int
    hash: str
    kind: str
    time: datetime
    key_id: str
    signature: bytes


@dataclass(frozen=True)
class AuditFilter:
    tenant: str = ""
    action: str = ""
    principal: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 0  # 0 = no limit
    outcome: str = ""  # "ok", "denied", "error", "replayed"; "" = any


class ServiceKeyStore(Protocol):
    """Keys the service itself owns: registration HPKE keys, the fingerprint key."""

    def add_service_key(self, record: ServiceKeyRecord) -> None:
        """Insert a service key (key_id unique)."""
        ...

    def get_service_key(self, key_id: str) -> ServiceKeyRecord | None:
        """One service key by id."""
        ...

    def list_service_keys(self, purpose: str) -> list[ServiceKeyRecord]:
        """Keys of that purpose, oldest first, retired ones included."""
        ...

    def replace_service_key_envelope(self, key_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation); False if it changed meanwhile."""
        ...

    def retire_service_key(self, key_id: str, at: datetime) -> bool:
        """Set retired_at (the key is refused from then on) if it is not set yet; False if
        the key does not exist or was retired already (the earlier time stays)."""
        ...


class TenantStore(Protocol):
    """Per-tenant facts the service issues itself."""

    def ensure_external_id(self, tenant: str, candidate: str, now: datetime) -> str:
        """The tenant's ExternalId: stored on first call (with candidate), then fixed forever.

        Concurrent first calls must agree on one value (insert-or-ignore, then read).
        """
        ...


class CredentialStore(Protocol):
    """Registered credentials: non-secret metadata plus the envelope of the secret."""

    def insert_credential(self, stored: StoredCredential) -> StoredCredential:
        """Insert; if (tenant, idempotency_key) exists (non-empty key), return the existing row
        unchanged instead. The caller compares request_hash."""
        ...

    def get_credential(self, tenant: str, credential_id: str) -> StoredCredential | None:
        """One credential of the tenant; another tenant's id is not found."""
        ...

    def find_by_idempotency_key(self, tenant: str, key: str) -> StoredCredential | None:
        """The credential registered with that idempotency key, if any ("" finds none)."""
        ...

    def list_credentials(self, tenant: str, after_id: str, limit: int) -> list[StoredCredential]:
        """Ordered by credential_id, strictly after after_id ("" = from the start);
        limit <= 0 means no limit."""
        ...

    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None:
        """Mark revoked and delete the envelope (crypto-shred) so that no copy of it stays
        in the database file (SQLite: secure_delete + WAL checkpoint). Idempotent: revoking
        a revoked credential returns it unchanged. None if it does not exist."""
        ...

    def replace_credential_envelope(self, credential_id: str, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the envelope (KEK rotation)."""
        ...

    def iter_live_credentials(self) -> Iterator[StoredCredential]:
        """Every credential that still has an envelope, of every tenant, ordered by
        credential_id, fetched a page at a time (KEK rotation needs each one's identity
        to rebuild its associated data)."""
        ...

    def iter_envelopes(self) -> Iterator[tuple[str, str, bytes]]:
        """(kind 'credential'|'service_key', id, envelope) of every live envelope (KEK rotation).

        Service keys are included so that one pass re-wraps everything under the KEK.
        """
        ...


class MountStore(Protocol):
    """Mounts: a bucket bound to one credential, with a policy."""

    def insert_mount(self, mount: Mount) -> None:
        """Insert; raises bucketvault.errors.AlreadyExists(reason="MOUNT_NAME_TAKEN") if
        (tenant, name) exists."""
        ...

    def get_mount(self, tenant: str, mount_id: str) -> Mount | None:
        """One mount of the tenant; another tenant's id is not found."""
        ...

    def list_mounts(self, tenant: str, after_id: str, limit: int) -> list[Mount]:
        """Ordered by mount_id, strictly after after_id; limit <= 0 means no limit."""
        ...

    def mounts_for_bucket(self, tenant: str, bucket: str) -> list[Mount]:
        """Every mount of the tenant on bucket (of any cloud), ordered by mount_id."""
        ...

    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount:
        """Compare-and-swap on version: set credential_id, version+1, updated_at=now.
        Raises NotFound(reason="MOUNT_NOT_FOUND") or Aborted(reason="VERSION_MISMATCH")."""
        ...

    def replace_mount(self, mount: Mount, expected_version: int) -> Mount:
        """Compare-and-swap on version: store every field of mount but its id, tenant and
        created_at (mount.version is the new version). Raises NotFound(MOUNT_NOT_FOUND),
        Aborted(VERSION_MISMATCH), AlreadyExists(MOUNT_NAME_TAKEN) or
        NotFound(CREDENTIAL_NOT_FOUND)."""
        ...

    def delete_mount(self, tenant: str, mount_id: str, expected_version: int) -> Mount:
        """Compare-and-swap on version: remove the mount and return it as it was. Raises
        NotFound(MOUNT_NOT_FOUND) or Aborted(VERSION_MISMATCH)."""
        ...


class Writes(Protocol):
    """The writes a use case may commit together with its audit record (see AuditBatch).

    Each behaves as the CredentialStore / MountStore method of the same name, inside the
    audit batch's transaction, except that nothing is purged after a revoke: the caller
    calls purge_revoked once the batch committed.
    """

    def insert_credential(self, stored: StoredCredential) -> StoredCredential: ...

    def revoke_credential(
        self, tenant: str, credential_id: str, by: str, reason: str, now: datetime
    ) -> StoredCredential | None: ...

    def insert_mount(self, mount: Mount) -> None: ...

    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int, now: datetime
    ) -> Mount: ...

    def replace_mount(self, mount: Mount, expected_version: int) -> Mount: ...

    def delete_mount(self, tenant: str, mount_id: str, expected_version: int) -> Mount: ...

    def revoke_link(self, revocation: LinkRevocation) -> LinkRevocation:
        """Add the link to the revocation list; one already there keeps its first
        revocation, which is returned."""
        ...


class LinkRevocationStore(Protocol):
    """Revoked stable links (links themselves are not stored: their token is their record)."""

    def link_revocations(self) -> frozenset[tuple[str, str, str]]:
        """Every revoked link as (tenant, mount_id, link_id)."""
        ...


class AuditBatch(Protocol):
    """One transaction of the audit writer: mutations, then their records."""

    def apply(self, change: Callable[[Writes], R]) -> R:
        """Run change in a savepoint: if it raises, only its own writes roll back."""
        ...

    def append(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows; a duplicate (writer_id, seq) aborts the whole batch."""
        ...


class AuditStore(Protocol):
    """The hash-chained audit log: appended in batches, read back for queries and checks."""

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Insert rows atomically (all or none); (writer_id, seq) is unique."""
        ...

    def audit_batch(self, work: Callable[[AuditBatch], R]) -> R:
        """work(batch) in one transaction, committed if it returns, rolled back if it raises:
        a mutation and its audit record are stored together or not at all."""
        ...

    def purge_revoked(self) -> None:
        """After a revoke committed through an audit batch, purge freed copies of the
        envelope (revoke_credential's purge); Unavailable(SHRED_INCOMPLETE) if busy."""
        ...

    def audit_head(self, writer_id: str) -> AuditRow | None:
        """The writer's last row (highest seq), to continue its chain after a restart."""
        ...

    def query_audit(self, audit_filter: AuditFilter) -> Iterator[AuditRow]:
        """Rows matching the filter (since inclusive, until exclusive), ordered by
        (time, writer_id, seq)."""
        ...

    def iter_audit_chain(self) -> Iterator[AuditRow]:
        """Every row ordered by (writer_id, seq), for verification."""
        ...


class AuditCheckpointStore(Protocol):
    """Signed checkpoints of the audit chains, and the reads and prune they need."""

    def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        """Insert; one already stored for (writer_id, seq, kind) is kept and this one dropped."""
        ...

    def list_audit_checkpoints(self, writer_id: str, from_seq: int = 0) -> list[AuditCheckpoint]:
        """The writer's checkpoints with seq >= from_seq, ordered by (seq, kind)."""
        ...

    def audit_writers(self) -> list[str]:
        """Every writer with a row or a checkpoint, sorted: a writer whose rows were all
        deleted still has its checkpoints, and must still be verified."""
        ...

    def iter_audit_writer(self, writer_id: str, from_seq: int = 0) -> Iterator[AuditRow]:
        """The writer's rows with seq >= from_seq, ordered by seq."""
        ...

    def last_audit_seq_before(self, writer_id: str, cutoff: datetime) -> int:
        """The highest seq among the writer's rows older than cutoff (0 if none)."""
        ...

    def prune_audit(self, anchor: AuditCheckpoint) -> int:
        """In one transaction: store the "pruned" anchor, delete its writer's rows with
        seq <= anchor.seq and its checkpoints with seq < anchor.seq. Returns rows deleted."""
        ...


class Store(
    ServiceKeyStore,
    LinkRevocationStore,
    TenantStore,
    CredentialStore,
    MountStore,
    AuditStore,
    AuditCheckpointStore,
    Protocol,
):
    """Everything the service persists; a component that needs one role takes that role."""

    def close(self) -> None:
        """Release the connections; later calls raise Unavailable(reason="STORE_CLOSED")."""
        ...


__all__ = [
    "HASH_VERSION",
    "AuditBatch",
    "AuditCheckpoint",
    "AuditCheckpointStore",
    "AuditFilter",
    "AuditRow",
    "AuditStore",
    "CredentialStore",
    "LinkRevocation",
    "LinkRevocationStore",
    "MountStore",
    "ServiceKeyRecord",
    "ServiceKeyStore",
    "Store",
    "StoredCredential",
    "TenantStore",
    "Writes",
]
