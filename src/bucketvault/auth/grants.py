"""The "grants" of a policy entry: what its roles reach, per tenant, parsed strictly.

Grant (JSON)::

    {"tenant": "acme", "mounts": ["photos", "mnt_..."], "prefixes": ["2024/"],
     "methods": ["GET", "HEAD"], "max_ttl_seconds": 300}

Only ``tenant`` is required; an omitted limit means none of that kind. Every key is
checked and an unknown one rejects the file: a misspelt limit ("prefix") read as no
limit would widen access without anyone noticing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bucketvault.config import MAX_URL_TTL_SECONDS
from bucketvault.errors import BucketVaultError, InvalidArgument
from bucketvault.models import ALL_TENANTS, Grant, Method
from bucketvault.objectkeys import check_mount_prefix

GRANT_KEYS = frozenset({"tenant", "mounts", "prefixes", "methods", "max_ttl_seconds"})
# The shape requests' tenant names must have (app.common.TENANT); anything else could
# never match a request, so it is a mistake in the file.
_TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_MOUNT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _bad(where: str, problem: str) -> InvalidArgument:
    # Messages name the place, never the value: a policy file holds token hashes.
    return InvalidArgument(f"{where} {problem}", reason="INVALID_POLICY")


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _bad(where, "must be a non-empty list (omit it for no limit)")
    if not all(isinstance(v, str) and v for v in value):
        raise _bad(where, "must hold non-empty strings")
    return list(value)


def parse_grant(doc: object, where: str) -> Grant:
    """One grant, or INVALID_POLICY naming the offending place."""
    if not isinstance(doc, Mapping):
        raise _bad(where, "must be an object")
    unknown = set(doc) - GRANT_KEYS
    if unknown:
        raise _bad(where, f"has unknown keys {sorted(unknown)}")
    tenant = doc.get("tenant")
    if not isinstance(tenant, str) or not (tenant == ALL_TENANTS or _TENANT.match(tenant)):
        raise _bad(f"{where}.tenant", "must be a tenant name or *")
    mounts = None
    if "mounts" in doc:
        mounts = frozenset(_strings(doc["mounts"], f"{where}.mounts"))
        if not all(_MOUNT_REF.match(m) for m in mounts):
            raise _bad(f"{where}.mounts", "must be mount ids or names")
    prefixes = None
    if "prefixes" in doc:
        prefixes = tuple(_strings(doc["prefixes"], f"{where}.prefixes"))
        for i, prefix in enumerate(prefixes):
            try:
                check_mount_prefix(prefix)
            except BucketVaultError:
                raise _bad(
                    f"{where}.prefixes[{i}]", "must be a key prefix (no leading /, no . or ..)"
                ) from None
    methods = None
    if "methods" in doc:
        try:
            methods = frozenset(Method(m) for m in _strings(doc["methods"], f"{where}.methods"))
        except ValueError:
            raise _bad(f"{where}.methods", "must be GET, HEAD or PUT") from None
    ttl = doc.get("max_ttl_seconds")
    if "max_ttl_seconds" in doc and (
        not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_URL_TTL_SECONDS
    ):
        raise _bad(f"{where}.max_ttl_seconds", f"must be an integer in 1..{MAX_URL_TTL_SECONDS}")
    return Grant(tenant, mounts, prefixes, methods, ttl)


def parse_grants(value: Any, where: str) -> tuple[Grant, ...]:
    """An entry's grants list (empty: the principal may do nothing)."""
    if not isinstance(value, list):
        raise _bad(where, "must be a list")
    return tuple(parse_grant(g, f"{where}[{i}]") for i, g in enumerate(value))


def grant_to_json(grant: Grant) -> dict[str, Any]:
    """The grant as policy.json spells it (limits that are None are left out)."""
    doc: dict[str, Any] = {"tenant": grant.tenant}
    if grant.mounts is not None:
        doc["mounts"] = sorted(grant.mounts)
    if grant.prefixes is not None:
        doc["prefixes"] = list(grant.prefixes)
    if grant.methods is not None:
        doc["methods"] = sorted(m.value for m in grant.methods)
    if grant.max_ttl_seconds is not None:
        doc["max_ttl_seconds"] = grant.max_ttl_seconds
    return doc


__all__ = ["GRANT_KEYS", "grant_to_json", "parse_grant", "parse_grants"]
