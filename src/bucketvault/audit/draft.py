"""The audit draft of the call being served: what its request asked and what the use case
learned so far, so that the call's one record can be written however the call ends.

The transport opens a draft per RPC (``drafting``); use cases add what they learn
(``current_draft``), and the success or failure record is made from it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bucketvault.audit.event import UNAUTHENTICATED, AuditEvent, KeyList


@dataclass
class AuditDraft:
    """Mutable on purpose, unlike the records made from it: the transport and the use case
    fill it in as one call proceeds, on that call's thread only."""

    request_id: str
    action: str
    peer: str
    principal: str = UNAUTHENTICATED
    tenant: str = ""
    mount_id: str = ""
    credential_id: str = ""
    keys: KeyList = field(default_factory=KeyList)
    method: str = ""
    requested_ttl_seconds: int = 0
    # Set once the call's record is committed: a later failure adds a follow-up record,
    # unless it is the error that record already reports (a refused change).
    recorded: bool = False
    recorded_error: BaseException | None = None
    # Messages a streaming call has sent (reported by a follow-up record).
    sent: int = 0

    def event(self, time: datetime, **fields: Any) -> AuditEvent:
        """A record of what the draft knows, with fields overriding it."""
        # One construction with the overrides merged in: building the record and then
        # replacing fields made two records per call on the signing path.
        known: dict[str, Any] = {
            "request_id": self.request_id,
            "principal": self.principal,
            "peer": self.peer,
            "action": self.action,
            "tenant": self.tenant,
            "resource": self.mount_id or self.credential_id or self.tenant,
            "mount_id": self.mount_id,
            "credential_id": self.credential_id,
            "keys": self.keys.keys,
            "key_count": self.keys.count,
            "keys_sha256": self.keys.sha256,
            "method": self.method,
            "requested_ttl_seconds": self.requested_ttl_seconds,
        }
        if fields:
            known.update(fields)
        return AuditEvent(time=time, **known)


_current: contextvars.ContextVar[AuditDraft | None] = contextvars.ContextVar(
    "bucketvault_audit_draft", default=None
)


def current_draft() -> AuditDraft | None:
    """The draft of the call being served, if a transport opened one."""
    return _current.get()


@contextmanager
def drafting(draft: AuditDraft) -> Iterator[AuditDraft]:
    """Make draft the current one for the body of a call."""
    token = _current.set(draft)
    try:
        yield draft
    finally:
        _current.reset(token)


__all__ = ["AuditDraft", "current_draft", "drafting"]
