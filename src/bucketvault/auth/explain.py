"""Who may do what: the policy's grants as the decision (auth/authz.py) reads them.

``explain`` walks the same per-principal index that ``decide`` consults
(``Principal.grants_for``, ``Principal.scope``) and matches mounts with the same
``covers_mount``, so what it lists is what is enforced. A listed rule allows a call when
its tenant, roles, mounts, prefixes (relative to the mount's prefix), methods and
max_ttl_seconds all allow it; "*" means no limit of that kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bucketvault.auth.authn import Policy
from bucketvault.auth.authz import covers_mount
from bucketvault.errors import NotFound
from bucketvault.models import Grant, Principal

ANY = "*"


@dataclass(frozen=True)
class Rule:
    """One grant of one principal."""

    principal: str
    roles: tuple[str, ...]
    tenant: str
    mounts: tuple[str, ...] | None
    prefixes: tuple[str, ...] | None
    methods: tuple[str, ...] | None
    max_ttl_seconds: int | None

    def to_json(self) -> dict[str, Any]:
        """The rule with "*" for every limit it does not set."""
        return {
            "principal": self.principal,
            "roles": list(self.roles),
            "tenant": self.tenant,
            "mounts": ANY if self.mounts is None else list(self.mounts),
            "prefixes": ANY if self.prefixes is None else list(self.prefixes),
            "methods": ANY if self.methods is None else list(self.methods),
            "max_ttl_seconds": ANY if self.max_ttl_seconds is None else self.max_ttl_seconds,
        }


def _rule(principal: Principal, grant: Grant) -> Rule:
    return Rule(
        principal=principal.name,
        roles=tuple(sorted(r.value for r in principal.roles)),
        tenant=grant.tenant,
        mounts=None if grant.mounts is None else tuple(sorted(grant.mounts)),
        prefixes=grant.prefixes,
        methods=None if grant.methods is None else tuple(sorted(m.value for m in grant.methods)),
        max_ttl_seconds=grant.max_ttl_seconds,
    )


def explain(
    policy: Policy,
    *,
    principal: str | None = None,
    tenant: str | None = None,
    mounts: Sequence[str] = (),
) -> list[Rule]:
    """The rules of one principal, or of everyone on a tenant (and one mount of it).

    mounts are the ways one mount may be named (its id, its name): a grant naming any of
    them, or naming no mounts, reaches it.
    """
    chosen = [p for p in policy.principals if principal is None or p.name == principal]
    if principal is not None and not chosen:
        raise NotFound(f"the policy has no principal named {principal!r}")
    rules = []
    for p in chosen:
        grants = p.grants_for(tenant) if tenant is not None else p.scope()
        for grant in grants:
            if mounts and not any(covers_mount(grant, m, m) for m in mounts):
                continue
            rules.append(_rule(p, grant))
    return rules


__all__ = ["ANY", "Rule", "explain"]
