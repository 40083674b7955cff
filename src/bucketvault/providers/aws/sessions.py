"""Where an AWS handle's signing keys come from: a fixed access key, or scoped sessions.

``RoleSessions`` holds one refresh-ahead session (providers/refresh.py) per
(scope, SourceIdentity). The scope is the mount's bucket, prefix and object actions,
so mounts that need the same rights share a session. SourceIdentity is in the key too:
STS fixes it when the session is made and CloudTrail attributes every request signed
with the session to it, so a session assumed for one caller must never sign for
another. Each entry keeps single flight and refresh-ahead: concurrent cold callers of
one (scope, caller) make one AssumeRole.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from bucketvault.clock import Clock
from bucketvault.errors import Unavailable
from bucketvault.models import Mount
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.scope import (
    SessionScope,
    attribution,
    check_limits,
    session_policy,
    sts_name,
)
from bucketvault.providers.aws.sts import FLOOR_SESSION_SECONDS, AssumeRoleRequest
from bucketvault.providers.refresh import Expiring, RefreshingValue, RefreshWindows, Spawn

# Distinct (scope, caller) pairs one credential keeps sessions for. Dropping the least
# recently used costs one AssumeRole when that pair signs again, nothing more.
MAX_SESSIONS = 256
ACCESS_KEY_SCOPE = "none: an access key; only bucketvault's checks confine this mount"
# SourceIdentity of sessions assumed for the service itself (CheckMount, admission).
SERVICE_CALLER = "bucketvault"


class SessionSource(Protocol):
    def get(self, mount: Mount, caller: str) -> AwsCredentials:
        """The credentials that sign for caller on mount now."""
        ...

    def enforced_scope(self, mount: Mount) -> str:
        """What the cloud itself enforces for this mount, in words."""
        ...

    def close(self) -> None:
        """Forget every session."""
        ...


@dataclass(frozen=True)
class StaticKey:
    """S3_ACCESS_KEY: one long-lived key for every mount; the cloud confines nothing."""

    credentials: AwsCredentials = field(repr=False)

    def get(self, mount: Mount, caller: str) -> AwsCredentials:
        """The key."""
        return self.credentials

    def enforced_scope(self, mount: Mount) -> str:
        """Nothing: the key reaches whatever its owner granted it."""
        return ACCESS_KEY_SCOPE

    def close(self) -> None:
        """Nothing cached."""


Assume = Callable[[AssumeRoleRequest], AwsCredentials]


class RoleSessions:
    """AWS_ROLE: sessions assumed with the mount's session policy and attribution."""

    def __init__(
        self,
        base: AssumeRoleRequest,
        tenant: str,
        assume: Assume,
        clock: Clock,
        windows: RefreshWindows,
        spawn: Spawn | None = None,
        *,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self._base = base
        self._tenant = tenant
        self._assume = assume
        self._clock = clock
        self._windows = windows
        self._spawn = spawn
        self._limit = limit
        self._lock = threading.Lock()
        self._closed = False
        self._values: OrderedDict[tuple[SessionScope, str], RefreshingValue[AwsCredentials]] = (
            OrderedDict()
        )

    def __repr__(self) -> str:
        return f"RoleSessions(role_arn={self._base.role_arn!r}, sessions={len(self._values)})"

    def request(self, mount: Mount, caller: str) -> AssumeRoleRequest:
        """The AssumeRole call that makes a session for caller on mount."""
        scope = SessionScope.of(mount, self._base.role_arn)
        who = attribution(self._tenant, caller or SERVICE_CALLER, scope)
        return replace(
            self._base,
            session_name=who.session_name,
            policy=session_policy(scope),
            source_identity=who.source_identity,
            tags=who.tags,
        )

    def _value(self, mount: Mount, caller: str) -> RefreshingValue[AwsCredentials]:
        scope = SessionScope.of(mount, self._base.role_arn)
        slot = (scope, sts_name(caller or SERVICE_CALLER))
        with self._lock:
            if self._closed:
                raise Unavailable("the credential was closed", reason="CREDENTIAL_CLOSED")
            value = self._values.get(slot)
            if value is None:
                request = self.request(mount, caller)

                def fetch() -> Expiring[AwsCredentials]:
                    session = self._assume(request)
                    return Expiring(session, session.expiration)

                value = RefreshingValue(
                    fetch,
                    self._clock,
                    self._windows,
                    **({"spawn": self._spawn} if self._spawn else {}),
                    what="AWS session",
                )
                self._values[slot] = value
                if len(self._values) > self._limit:
                    # Not closed: a caller may still be using it; it is only forgotten.
                    self._values.popitem(last=False)
            else:
                self._values.move_to_end(slot)
        return value

    def get(self, mount: Mount, caller: str) -> AwsCredentials:
        """The (scope, caller) session: cached, refreshed ahead, or assumed now."""
        return self._value(mount, caller).get().value

    def admit_mount(self, mount: Mount) -> None:
        """Local STS limits first, then one real AssumeRole: only STS knows the packed size
        of policy and tags, and whether the trust policy allows tagging this session."""
        request = self.request(mount, SERVICE_CALLER)
        check_limits(request.policy, request.tags)
        # The shortest session every role grants; it is thrown away.
        self._assume(replace(request, duration_seconds=FLOOR_SESSION_SECONDS))

    def enforced_scope(self, mount: Mount) -> str:
        """The session policy's rights."""
        return SessionScope.of(mount, self._base.role_arn).describe()

    def close(self) -> None:
        """Close every session; later calls fail."""
        with self._lock:
            self._closed = True
            values = list(self._values.values())
            self._values.clear()
        for value in values:
            value.close()


__all__ = [
    "ACCESS_KEY_SCOPE",
    "MAX_SESSIONS",
    "SERVICE_CALLER",
    "RoleSessions",
    "SessionSource",
    "StaticKey",
]
