"""Audit use cases: query the log, verify its chains."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bucketvault.app.common import Seams, tenant_name
from bucketvault.audit import VerifyResult, verify_chain
from bucketvault.auth.authz import authorize
from bucketvault.models import Principal, Role
from bucketvault.store.base import AuditFilter, AuditRow


@dataclass(frozen=True)
class Audit:
    """Reading the audit log is itself audited."""

    seams: Seams

    def query(
        self, principal: Principal, audit_filter: AuditFilter, request_id: str
    ) -> Iterator[AuditRow]:
        """Records matching the filter, oldest first."""
        if audit_filter.tenant:
            authorize(principal, Role.AUDITOR, tenant_name(audit_filter.tenant))
        else:
            # Unfiltered reads span tenants: only an all-tenant auditor may make them.
            authorize(principal, Role.AUDITOR, "*")
        self.seams.record(
            principal, audit_filter.tenant, "audit.query", audit_filter.tenant, request_id
        )
        return self.seams.store.query_audit(audit_filter)

    def verify(self, principal: Principal, request_id: str) -> VerifyResult:
        """Check every writer's hash chain."""
        authorize(principal, Role.AUDITOR, "*")
        result = verify_chain(self.seams.store.iter_audit_chain())
        self.seams.record(principal, "", "audit.verify", "", request_id, ok=str(result.ok))
        return result


__all__ = ["Audit"]
