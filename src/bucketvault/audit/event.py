"""What one audit record says about one RPC: who asked what, and what came of it.

Never a secret: principals are policy names, keys are object names, and the sealed
credential, tokens and authorization headers have no field here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import grpc

from bucketvault.errors import BucketVaultError, Internal

# A batch record lists at most this many keys (in request order); key_count and
# keys_sha256 (over every key, joined by "\n") stand for the whole batch. 1000 keys of up
# to 1 KiB would make a 1 MB row on the signing hot path; 64 names a batch recognisably.
MAX_LISTED_KEYS = 64
# Longest text kept from a request field: a refused request may carry anything.
MAX_FIELD_CHARS = 1024
UNAUTHENTICATED = "unauthenticated"
# Coarse outcomes; the status code and reason say exactly what happened.
OK, REPLAYED, DENIED, ERROR = "ok", "replayed", "denied", "error"
_DENIALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


@dataclass(frozen=True)
class AuditEvent:
    """One RPC's record, without its place in the chain (see store.base.AuditRow)."""

    time: datetime
    request_id: str
    # The policy name of the caller, or "unauthenticated".
    principal: str
    # The transport's peer address (e.g. "ipv4:10.0.0.7:51234").
    peer: str
    action: str
    tenant: str
    resource: str
    mount_id: str = ""
    credential_id: str = ""
    keys: tuple[str, ...] = ()
    key_count: int = 0
    keys_sha256: str = ""
    # The HTTP method signed for ("GET", "HEAD", "PUT"), when the call signs.
    method: str = ""
    requested_ttl_seconds: int = 0
    expires_at: datetime | None = None
    outcome: str = OK
    # The gRPC status code name ("OK", "PERMISSION_DENIED" ...) and the error reason.
    status: str = "OK"
    reason: str = ""
    # Non-secret context as canonical JSON text: the chain hashes it byte for byte.
    detail_json: str = "{}"

    @property
    def detail(self) -> dict[str, str]:
        loaded = json.loads(self.detail_json or "{}")
        return {str(k): str(v) for k, v in loaded.items()}


def detail_text(detail: Mapping[str, str]) -> str:
    """Canonical JSON for a record's detail."""
    return json.dumps(dict(detail), sort_keys=True, separators=(",", ":"))


def bounded(text: str) -> str:
    """A request field cut to MAX_FIELD_CHARS."""
    return text[:MAX_FIELD_CHARS]


@dataclass(frozen=True)
class KeyList:
    """A batch's keys as a record keeps them: the first few, the count, a digest of all."""

    keys: tuple[str, ...] = ()
    count: int = 0
    sha256: str = ""

    @classmethod
    def of(cls, keys: Sequence[str]) -> KeyList:
        if not keys:
            return cls()
        joined = "\n".join(keys).encode("utf-8", "surrogatepass")
        listed = tuple(bounded(k) for k in keys[:MAX_LISTED_KEYS])
        return cls(listed, len(keys), hashlib.sha256(joined).hexdigest())


def failed(event: AuditEvent, error: BaseException) -> AuditEvent:
    """The record of a call that ended with error (anything unexpected is INTERNAL)."""
    known = error if isinstance(error, BucketVaultError) else Internal("internal error")
    return dataclasses.replace(
        event,
        outcome=DENIED if known.code in _DENIALS else ERROR,
        status=known.code.name,
        reason=known.reason,
    )


__all__ = [
    "DENIED",
    "ERROR",
    "MAX_LISTED_KEYS",
    "OK",
    "REPLAYED",
    "UNAUTHENTICATED",
    "AuditEvent",
    "KeyList",
    "bounded",
    "detail_text",
    "failed",
]
