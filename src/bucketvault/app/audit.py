"""Audit use cases: query the log, verify its chains and checkpoints, export it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from bucketvault.app.common import Seams, tenant_name
from bucketvault.audit import archive
from bucketvault.audit.signing import AuditSigner
from bucketvault.audit.verifier import AuditVerifier
from bucketvault.audit.verify import VerifyResult
from bucketvault.auth.authz import Ask, Reach, require
from bucketvault.errors import InvalidArgument
from bucketvault.models import ALL_TENANTS, Principal, Role
from bucketvault.store.base import AuditCheckpoint, AuditFilter, AuditRow


@dataclass(frozen=True)
class AuditKey:
    """The public key audit checkpoints are signed with: pin it to verify exports offline."""

    key_id: str
    public_key_pem: str


@dataclass(frozen=True)
class Audit:
    """Reading the audit log is itself audited."""

    seams: Seams
    verifier: AuditVerifier
    signer: AuditSigner

    def query(
        self, principal: Principal, audit_filter: AuditFilter, request_id: str
    ) -> Iterator[AuditRow]:
        """Records matching the filter, oldest first."""
        # Unfiltered reads span tenants: only an all-tenant auditor may make them. A
        # tenant's records cover all its mounts, so mount grants do not reach them.
        tenant = tenant_name(audit_filter.tenant) if audit_filter.tenant else ALL_TENANTS
        require(principal, Ask((Role.AUDITOR,), tenant, Reach.TENANT))
        self.seams.record(
            principal, audit_filter.tenant, "audit.query", audit_filter.tenant, request_id
        )
        return self.seams.store.query_audit(audit_filter)

    def verify(self, principal: Principal, full: bool, request_id: str) -> VerifyResult:
        """Check every writer's chain against its signed checkpoints (incremental unless full)."""
        require(principal, Ask((Role.AUDITOR,), ALL_TENANTS, Reach.TENANT))
        result = self.verifier.verify(full=full)
        self.seams.record(
            principal, "", "audit.verify", "", request_id, ok=str(result.ok), full=str(full)
        )
        return result

    def audit_key(self, principal: Principal) -> AuditKey:
        """The current audit signing key's public half (public: any authenticated caller)."""
        return AuditKey(self.signer.key_id, self.signer.public_pem())

    def export(
        self,
        principal: Principal,
        since: datetime | None,
        until: datetime | None,
        request_id: str,
    ) -> Iterator[str]:
        """Archive-format lines for the rows in [since, until), with the checkpoints
        that fall inside each writer's exported range (and the one just before it)."""
        require(principal, Ask((Role.AUDITOR,), ALL_TENANTS, Reach.TENANT))
        if since is not None and until is not None and until <= since:
            raise InvalidArgument(
                "until must be after since", reason="INVALID_FIELD", field="until"
            )
        self.seams.record(principal, "", "audit.export", "", request_id)
        store = self.seams.store
        # First pass: each writer's seq range in the window (rows of one writer are in
        # seq order but their times need not be strictly monotonic, so export the range).
        ranges: dict[str, tuple[int, int]] = {}
        for row in store.query_audit(AuditFilter(since=since, until=until)):
            low, high = ranges.get(row.writer_id, (row.seq, row.seq))
            ranges[row.writer_id] = (min(low, row.seq), max(high, row.seq))
        checkpoints: list[AuditCheckpoint] = []
        for writer, (low, high) in sorted(ranges.items()):
            checkpoints += [
                c for c in store.list_audit_checkpoints(writer, low - 1) if c.seq <= high
            ]

        def rows() -> Iterator[AuditRow]:
            for writer, (low, high) in sorted(ranges.items()):
                for row in store.iter_audit_writer(writer, low):
                    if row.seq > high:
                        break
                    yield row

        return archive.lines_of(self.signer.key_id, self.signer.public_pem(), checkpoints, rows())


__all__ = ["Audit", "AuditKey"]
