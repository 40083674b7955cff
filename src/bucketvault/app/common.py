"""What every use case shares: request field checks, ids, paging and the audit call."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from bucketvault.app.handles import Handles
from bucketvault.audit.draft import AuditDraft, current_draft
from bucketvault.audit.event import OK, AuditEvent, KeyList, detail_text, failed
from bucketvault.audit.log import AuditLog, Change, Committed
from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, InvalidArgument
from bucketvault.models import Principal
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.store.base import Store
from bucketvault.urlpolicy import UrlPolicy

R = TypeVar("R")
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


def need_keys(keys: Sequence[str], most: int) -> None:
    """A batch's keys: at least one, at most most (the caller's limit, as signing and
    links each name theirs)."""
    if not keys:
        raise InvalidArgument("at least one key is required", reason="MISSING_FIELD", field="keys")
    if len(keys) > most:
        raise InvalidArgument(
            f"at most {most} keys per call", reason="BATCH_TOO_LARGE", field="keys"
        )


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
    """Writes the audit record of a call (fail-closed: no record, no answer).

    A call served by the transport has a draft (audit/draft.py) holding what its request
    asked; the record is made from it, so use cases name only what they decided or
    learned. Writes go through ``mutate``: the change and its record commit together.
    """

    audit: AuditLog

    def note(
        self, *, mount_id: str = "", credential_id: str = "", keys: Sequence[str] = ()
    ) -> None:
        """What the use case learned that a failure record should carry (the mount's
        credential, the keys URIs named ...)."""
        draft = current_draft()
        if draft is None:
            return
        if mount_id:
            draft.mount_id = mount_id
        if credential_id:
            draft.credential_id = credential_id
        if keys:
            draft.keys = KeyList.of(keys)

    def __call__(
        self,
        principal: Principal,
        tenant: str,
        action: str,
        resource: str,
        request_id: str,
        outcome: str = OK,
        *,
        method: str = "",
        expires_at: datetime | None = None,
        **detail: str,
    ) -> None:
        """Record a successful call."""
        # The signed method and expiry go into the one record built (no copy per call).
        extra: dict[str, Any] = {}
        if method:
            extra["method"] = method
        if expires_at is not None:
            extra["expires_at"] = expires_at
        event = self._event(
            principal, tenant, action, resource, request_id, outcome, detail, **extra
        )
        self._commit(event, None)

    def mutate(
        self,
        change: Change[R],
        principal: Principal,
        tenant: str,
        action: str,
        resource: str,
        request_id: str,
        **detail: str,
    ) -> R:
        """Apply change and record the call in one transaction: the change's result, or
        its error (then rolled back, and recorded as the call's failure)."""
        event = self._event(principal, tenant, action, resource, request_id, OK, detail)
        committed = self._commit(event, change)
        if committed.refused is not None:
            draft = current_draft()
            if draft is not None:
                draft.recorded_error = committed.refused
            raise committed.refused
        return cast(R, committed.value)

    def failure(self, draft: AuditDraft, error: BucketVaultError) -> None:
        """Record a call that failed with error; a follow-up record if the call's own
        record was committed before the failure (a stream that broke off)."""
        if error is draft.recorded_error:
            return
        event = failed(draft.event(self.audit.now()), error)
        if draft.recorded:
            event = dataclasses.replace(
                event,
                detail_json=detail_text({"follow_up": "true", "messages_sent": str(draft.sent)}),
            )
        self.audit.record(event)
        draft.recorded = True

    def closing(self, draft: AuditDraft) -> None:
        """Record a call that succeeded without a use case recording it."""
        if not draft.recorded:
            self.audit.record(draft.event(self.audit.now()))
            draft.recorded = True

    def _event(
        self,
        principal: Principal,
        tenant: str,
        action: str,
        resource: str,
        request_id: str,
        outcome: str,
        detail: Mapping[str, str],
        **extra: Any,
    ) -> AuditEvent:
        # Outside a served call (a use case driven directly) there is nothing to draw on.
        draft = current_draft() or AuditDraft(request_id, action, peer="")
        return draft.event(
            self.audit.now(),
            principal=principal.name,
            tenant=tenant,
            action=action,
            resource=resource,
            request_id=request_id,
            outcome=outcome,
            detail_json=detail_text(detail),
            **extra,
        )

    def _commit(self, event: AuditEvent, change: Change[R] | None) -> Committed[R]:
        committed = self.audit.record(event, change)
        draft = current_draft()
        if draft is not None:
            draft.recorded = True
        return committed


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
