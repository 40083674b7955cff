"""Audit use cases: query the log, verify its chains."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bucketvault.app.common import Seams, tenant_name
from bucketvault.audit import VerifyResult, verify_chain
from bucketvault.auth.authz import Ask, Reach, require
from bucketvault.models import ALL_TENANTS, Principal, Role
from bucketvault.store.base import AuditFilter, AuditRow


@dataclass(frozen=True)
class Audit:
    """Reading the audit log is itself audited."""

    seams: Seams

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

    def verify(self, principal: Principal, request_id: str) -> VerifyResult:
        """Check every writer's hash chain."""
        require(principal, Ask((Role.AUDITOR,), ALL_TENANTS, Reach.TENANT))
        result = verify_chain(self.seams.store.iter_audit_chain())
        self.seams.record(principal, "", "audit.verify", "", request_id, ok=str(result.ok))
        return result


__all__ = ["Audit"]
