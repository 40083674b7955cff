"""Bearer tokens mapped to principals by a policy file that stores only token hashes.

Policy file (JSON)::

    {"principals": [
        {"name": "image-viewer", "token_sha256": "<hex>", "roles": ["signer"], "tenants": ["acme"]},
        {"name": "admin", "token_sha256": "<hex>", "roles": ["signer", "operator", "auditor"],
         "tenants": ["*"]}
    ]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bucketvault.errors import InvalidArgument, Unauthenticated
from bucketvault.models import Principal, Role

_MIN_TOKEN_CHARS = 16


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens are random and long, so plain SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _principal(entry: Mapping[str, Any], index: int) -> tuple[str, Principal]:
    where = f"principals[{index}]"
    name, digest = entry.get("name"), entry.get("token_sha256")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{where}.name is required", reason="INVALID_POLICY")
    if not isinstance(digest, str) or len(digest) != 64:
        raise InvalidArgument(
            f"{where}.token_sha256 must be 64 hex digits", reason="INVALID_POLICY"
        )
    try:
        roles = frozenset(Role(r) for r in entry.get("roles", []))
    except ValueError as exc:
        raise InvalidArgument(
            f"{where}.roles has an unknown role", reason="INVALID_POLICY"
        ) from exc
    tenants = entry.get("tenants", [])
    if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
        raise InvalidArgument(f"{where}.tenants must be a list of names", reason="INVALID_POLICY")
    return digest.lower(), Principal(name=name, roles=roles, tenants=frozenset(tenants))


def load_policy_file(path: Path) -> dict[str, Principal]:
    """token hash -> Principal, validated; a bad file stops start-up."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"cannot read policy file {path}", reason="INVALID_POLICY") from exc
    entries = doc.get("principals") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InvalidArgument("policy file needs a 'principals' list", reason="INVALID_POLICY")
    out: dict[str, Principal] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"principals[{i}] must be an object", reason="INVALID_POLICY")
        digest, principal = _principal(entry, i)
        out[digest] = principal
    return out


class TokenAuthenticator:
    def __init__(self, principals_by_hash: Mapping[str, Principal]) -> None:
        self._by_hash = dict(principals_by_hash)

    def authenticate(self, authorization: str | None) -> Principal:
        """Principal for an ``authorization`` header value, or Unauthenticated."""
        if not authorization:
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or len(token) < _MIN_TOKEN_CHARS:
            raise Unauthenticated("malformed bearer token", reason="TOKEN_MALFORMED")
        principal = self._by_hash.get(hash_token(token))
        if principal is None:
            raise Unauthenticated("unknown bearer token", reason="TOKEN_UNKNOWN")
        return principal


__all__ = ["TokenAuthenticator", "hash_token", "load_policy_file"]
