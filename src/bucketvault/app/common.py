"""What every use case shares: request field checks, ids, paging and the audit call."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from bucketvault.app.handles import Handles
from bucketvault.audit import AuditEvent, AuditLog
from bucketvault.clock import Clock
from bucketvault.errors import InvalidArgument
from bucketvault.models import Principal
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.store.base import Store
from bucketvault.urlpolicy import UrlPolicy

MAX_PAGE_SIZE = 1000
TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def new_id(prefix: str) -> str:
    """A random, unguessable identifier (cred_..., mnt_...)."""
    return prefix + secrets.token_hex(10)


def need(value: str, name: str, pattern: re.Pattern[str] | None = None) -> str:
    """A required request field, optionally of a given shape."""
    if not value:
        raise InvalidArgument(f"{name} is required", reason="MISSING_FIELD", field=name)
    if pattern is not None and not pattern.match(value):
        raise InvalidArgument(f"{name} is malformed", reason="INVALID_FIELD", field=name)
    return value


def tenant_name(tenant: str) -> str:
    """A well-formed tenant name."""
    return need(tenant, "tenant", TENANT)


def limit_text(value: str, name: str, most: int) -> str:
    """A free-text request field of at most `most` characters."""
    if len(value) > most:
        raise InvalidArgument(f"{name} is too long", reason="INVALID_FIELD", field=name)
    return value


def page_size(requested: int, default: int) -> int:
    """A page size in [1, MAX_PAGE_SIZE]; 0 means `default`."""
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE_SIZE}",
            reason="INVALID_FIELD",
            field="page_size",
        )
    return requested or default


@dataclass(frozen=True)
class Seams:
    """What every use case works through: the store, the providers, open credentials,
    the audit call and the clock, chosen once at the composition root."""

    store: Store
    registry: ProviderRegistry
    handles: Handles
    record: Recorder
    clock: Clock
    url_policy: UrlPolicy


@dataclass(frozen=True)
class Recorder:
    """Writes one audit record per call (fail-closed: no record, no answer)."""

    audit: AuditLog

    def __call__(
        self,
        principal: Principal,
        tenant: str,
        action: str,
        resource: str,
        request_id: str,
        outcome: str = "ok",
        **detail: str,
    ) -> None:
        self.audit.record(
            AuditEvent(principal.name, tenant, action, resource, outcome, request_id, detail)
        )


__all__ = [
    "MAX_PAGE_SIZE",
    "TENANT",
    "Recorder",
    "Seams",
    "limit_text",
    "need",
    "new_id",
    "page_size",
    "tenant_name",
]
