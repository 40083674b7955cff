"""Authorization: one pure decision, ``decide(principal, ask)``, for every use case.

Deny by default: a call is allowed when one grant of the principal (models.Grant; an
entry without grants has one unlimited grant per tenant) allows all of it: the role,
the tenant, the mount, the method, the lifetime and every key of a batch. Grants are
never combined, so a call cannot borrow its method from one grant and its prefix from
another.

Use cases ask twice for a mount: before any lookup (``Reach.SOME``: the role and the
tenant only) and once the mount is read (``Reach.MOUNT``). A principal limited to some
mounts gets one answer, MOUNT_NOT_GRANTED with one message, for a mount outside its
grants and for one that does not exist, so a denial never says what exists.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

from bucketvault.errors import PermissionDenied
from bucketvault.models import Grant, Method, Mount, Principal, Role

# What the lifetime of a URL signed with no asked TTL was cut to the grant's cap by.
PRINCIPAL_MAX_TTL = "PRINCIPAL_MAX_TTL"


class Reach(enum.Enum):
    """How much of the tenant a call touches."""

    # Some part of it: the check before a lookup, or a listing filtered by mount.
    SOME = "some"
    # All of it: credentials, new mounts, rebinding, trust policies, the audit log.
    TENANT = "tenant"
    # One mount: Ask.mount, or None when the tenant has no mount by the asked id.
    MOUNT = "mount"


@dataclass(frozen=True)
class Ask:
    """What one call needs, as far as authorization is concerned."""

    roles: tuple[Role, ...]
    tenant: str
    reach: Reach = Reach.SOME
    mount: Mount | None = None
    method: Method | None = None
    # 0: no lifetime asked (the default is capped to the grant's maximum, not refused).
    ttl_seconds: int = 0
    # Absolute object keys to sign, or the absolute listing prefix.
    keys: Sequence[str] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    message: str = ""
    # The grant that allows the call.
    grant: Grant | None = None
    # The request field at fault, when one is.
    field: str | None = None

    def cap(self, expires_in: int, capped_by: str) -> tuple[int, str]:
        """A default lifetime cut to the allowing grant's maximum."""
        most = self.grant.max_ttl_seconds if self.grant is not None else None
        if most is not None and expires_in > most:
            expires_in, capped_by = most, PRINCIPAL_MAX_TTL
        return expires_in, capped_by


def covers_mount(grant: Grant, mount_id: str, name: str) -> bool:
    """Whether the grant reaches the mount (named by id or by name)."""
    return grant.mounts is None or mount_id in grant.mounts or name in grant.mounts


def _deny(reason: str, message: str, field: str | None = None) -> Decision:
    return Decision(False, reason=reason, message=message, field=field)


def _under(grant: Grant, mount_prefix: str, keys: Sequence[str]) -> bool:
    if grant.prefixes is None or not keys:
        return True
    allowed = tuple(mount_prefix + p for p in grant.prefixes)
    # map() keeps the per-key loop in C: SignURLs checks up to 1000 keys per call.
    return all(map(str.startswith, keys, repeat(allowed)))


def decide(principal: Principal, ask: Ask) -> Decision:
    """Allow or deny, with the reason; pure, and cheap on the signing path."""
    name = principal.name
    grants = principal.grants_for(ask.tenant)
    if not grants or principal.roles.isdisjoint(ask.roles):
        roles = "/".join(r.value for r in ask.roles)
        return _deny(
            "PERMISSION_DENIED", f"principal {name!r} may not act as {roles} for this tenant"
        )
    if ask.reach is Reach.SOME:
        return Decision(True, grant=grants[0])
    if ask.reach is Reach.TENANT:
        whole = [g for g in grants if g.mounts is None]
        if not whole:
            return _deny(
                "TENANT_GRANT_REQUIRED",
                f"principal {name!r} is granted only some mounts of this tenant",
            )
        return Decision(True, grant=whole[0])
    mount = ask.mount
    if mount is None:
        grants = tuple(g for g in grants if g.mounts is None)
    else:
        grants = tuple(g for g in grants if covers_mount(g, mount.mount_id, mount.name))
    if not grants:
        # The same words whether or not the mount exists.
        return _deny("MOUNT_NOT_GRANTED", f"principal {name!r} may not use this mount", "mount_id")
    if ask.method is not None:
        method = ask.method
        grants = tuple(g for g in grants if g.methods is None or method in g.methods)
        if not grants:
            return _deny(
                "METHOD_NOT_GRANTED",
                f"principal {name!r} may not sign {method.value} URLs for this mount",
                "method",
            )
    if ask.ttl_seconds > 0:
        ttl = ask.ttl_seconds
        fitting = tuple(g for g in grants if g.max_ttl_seconds is None or ttl <= g.max_ttl_seconds)
        if not fitting:
            most = max(g.max_ttl_seconds or 0 for g in grants)
            return _deny(
                "TTL_OVER_PRINCIPAL_CAP",
                f"ttl_seconds exceeds principal {name!r}'s maximum of {most} for this mount",
                "ttl_seconds",
            )
        grants = fitting
    prefix = mount.prefix if mount is not None else ""
    for grant in grants:
        if _under(grant, prefix, ask.keys):
            return Decision(True, grant=grant)
    return _deny(
        "PREFIX_NOT_GRANTED",
        f"principal {name!r} may not use these keys of this mount",
    )


def require(principal: Principal, ask: Ask, *, keys_field: str = "keys") -> Decision:
    """The allowing decision, or PermissionDenied with its reason.

    keys_field names the request field that holds Ask.keys ("key", "prefix" ...).
    """
    decision = decide(principal, ask)
    if not decision.allowed:
        field = decision.field
        if decision.reason == "PREFIX_NOT_GRANTED":
            field = keys_field
        raise PermissionDenied(decision.message, reason=decision.reason, field=field)
    return decision


def authorize(principal: Principal, role: Role, tenant: str) -> None:
    """Raise PermissionDenied unless the principal holds role for (some of) tenant."""
    require(principal, Ask((role,), tenant))


def authorize_any(principal: Principal, roles: tuple[Role, ...], tenant: str) -> None:
    """Raise PermissionDenied unless the principal holds one of roles for (some of) tenant."""
    require(principal, Ask(roles, tenant))


__all__ = [
    "PRINCIPAL_MAX_TTL",
    "Ask",
    "Decision",
    "Reach",
    "authorize",
    "authorize_any",
    "covers_mount",
    "decide",
    "require",
]
