"""Authorization: a pure function of principal, role and tenant.

It runs before any lookup, so a denial never reveals whether the resource exists.
"""

from __future__ import annotations

from bucketvault.errors import PermissionDenied
from bucketvault.models import Principal, Role


def authorize(principal: Principal, role: Role, tenant: str) -> None:
    """Raise PermissionDenied unless the principal holds role for tenant."""
    if role not in principal.roles or not principal.may_act_for(tenant):
        raise PermissionDenied(
            f"principal {principal.name!r} may not act as {role.value} for this tenant",
            reason="PERMISSION_DENIED",
        )


def authorize_any(principal: Principal, roles: tuple[Role, ...], tenant: str) -> None:
    """Raise PermissionDenied unless the principal holds one of roles for tenant."""
    if not principal.may_act_for(tenant) or not any(r in principal.roles for r in roles):
        names = "/".join(r.value for r in roles)
        raise PermissionDenied(
            f"principal {principal.name!r} may not act as {names} for this tenant",
            reason="PERMISSION_DENIED",
        )


__all__ = ["authorize", "authorize_any"]
