"""The audit log: hash-chained per writer, committed in groups, fail-closed."""

from bucketvault.audit.chain import GENESIS, row_hash
from bucketvault.audit.log import AuditEvent, AuditLog
from bucketvault.audit.sinks import AuditSink, JsonLinesSink
from bucketvault.audit.verify import VerifyResult, verify_chain

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "JsonLinesSink",
    "VerifyResult",
    "row_hash",
    "verify_chain",
]
