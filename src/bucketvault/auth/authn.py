"""Bearer tokens mapped to principals by a policy file that stores only token hashes.

Policy file (JSON)::

    {"principals": [
        {"name": "image-viewer", "token_sha256": "<hex>", "roles": ["signer"], "tenants": ["acme"]},
        {"name": "admin", "token_sha256": "<hex>", "roles": ["signer", "operator", "auditor"],
         "tenants": ["*"]},
        {"name": "ingest", "mtls_id": "spiffe://acme.example/ns/ml/sa/ingest",
         "roles": ["signer"], "tenants": ["acme"]},
        {"name": "thumbnailer", "token_sha256": "<hex>", "roles": ["signer"],
         "grants": [{"tenant": "acme", "mounts": ["photos"], "prefixes": ["2024/"],
                     "methods": ["GET", "HEAD"], "max_ttl_seconds": 300}]},
        {"name": "batch-job", "token_sha256": "<hex>", "roles": ["signer"], "tenants": ["acme"],
         "limits": {"rps": 50, "burst": 100, "concurrency": 8}}
    ]}

An entry names its caller by a token hash, by the identity its client certificate carries
(``mtls_id``: the certificate's URI SAN, or its first DNS SAN without one), or by both.
An entry with ``grants`` (auth/grants.py) reaches only what they name, and names its
tenants there instead of in ``tenants``; one without reaches every mount of its tenants.
``limits`` (auth/limits.py) overrides the server's per-principal call limits.
A file is accepted or rejected whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bucketvault.auth.grants import parse_grants
from bucketvault.auth.limits import parse_limits
from bucketvault.errors import InvalidArgument, Unauthenticated
from bucketvault.models import Grant, Limits, Principal, Role

_MIN_TOKEN_CHARS = 16
# An unknown key is rejected, not ignored: "grant" misspelt for "grants" would otherwise
# turn a restricted principal into one that reaches its whole tenant.
ENTRY_KEYS = frozenset(
    {"name", "token_sha256", "mtls_id", "roles", "tenants", "grants", "limits", "comment"}
)


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens are random and long, so plain SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Policy:
    """Who the callers are: principals by token hash and by client-certificate identity."""

    by_token_hash: Mapping[str, Principal]
    by_mtls_id: Mapping[str, Principal]
    # Every principal, in file order (policy explain).
    principals: tuple[Principal, ...] = ()


def _principal(entry: Mapping[str, Any], index: int) -> tuple[str, str, Principal]:
    where = f"principals[{index}]"
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise InvalidArgument(
            f"{where} has unknown keys {sorted(unknown)}", reason="INVALID_POLICY"
        )
    name, digest = entry.get("name"), entry.get("token_sha256", "")
    mtls_id = entry.get("mtls_id", "")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{where}.name is required", reason="INVALID_POLICY")
    if not isinstance(digest, str) or (digest and len(digest) != 64):
        raise InvalidArgument(
            f"{where}.token_sha256 must be 64 hex digits", reason="INVALID_POLICY"
        )
    if not isinstance(mtls_id, str) or len(mtls_id) > 2048:
        raise InvalidArgument(f"{where}.mtls_id must be a string", reason="INVALID_POLICY")
    if not digest and not mtls_id:
        raise InvalidArgument(f"{where} needs token_sha256 or mtls_id", reason="INVALID_POLICY")
    if not isinstance(entry.get("roles", []), list):
        raise InvalidArgument(f"{where}.roles must be a list", reason="INVALID_POLICY")
    try:
        roles = frozenset(Role(r) for r in entry.get("roles", []))
    except ValueError as exc:
        raise InvalidArgument(
            f"{where}.roles has an unknown role", reason="INVALID_POLICY"
        ) from exc
    tenants = entry.get("tenants", [])
    if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
        raise InvalidArgument(f"{where}.tenants must be a list of names", reason="INVALID_POLICY")
    grants: tuple[Grant, ...] = ()
    if "grants" in entry:
        if "tenants" in entry:
            # Two lists of tenants could disagree; the grants alone say where roles reach.
            raise InvalidArgument(
                f"{where} has both tenants and grants: grants name their tenants",
                reason="INVALID_POLICY",
            )
        grants = parse_grants(entry["grants"], f"{where}.grants")
        tenants = sorted({g.tenant for g in grants})
    limits = parse_limits(entry["limits"], f"{where}.limits") if "limits" in entry else Limits()
    principal = Principal(
        name=name, roles=roles, tenants=frozenset(tenants), grants=grants, limits=limits
    )
    return digest.lower(), mtls_id, principal


def load_policy_file(path: Path) -> Policy:
    """The principals of a policy file, validated; a bad file stops start-up."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"cannot read policy file {path}", reason="INVALID_POLICY") from exc
    entries = doc.get("principals") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InvalidArgument("policy file needs a 'principals' list", reason="INVALID_POLICY")
    by_hash: dict[str, Principal] = {}
    by_mtls: dict[str, Principal] = {}
    by_name: dict[str, Principal] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"principals[{i}] must be an object", reason="INVALID_POLICY")
        digest, mtls_id, principal = _principal(entry, i)
        if principal.name in by_name:
            # The audit log names callers by name: two callers with one name are one.
            raise InvalidArgument(
                f"principals[{i}] repeats another entry's name", reason="INVALID_POLICY"
            )
        by_name[principal.name] = principal
        for index, value in ((by_hash, digest), (by_mtls, mtls_id)):
            if value and value in index:
                # Two principals for one caller would make the answer depend on file order.
                raise InvalidArgument(
                    f"principals[{i}] repeats another entry's token or mtls_id",
                    reason="INVALID_POLICY",
                )
            if value:
                index[value] = principal
    return Policy(by_hash, by_mtls, tuple(by_name.values()))


class TokenAuthenticator:
    """Maps a call's bearer token, or its verified client certificate, to a principal.

    The policy is one reference, swapped whole by ``replace`` (a reload): a call reads it
    once, so it sees either the old policy or the new one, never a mix.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    @property
    def policy(self) -> Policy:
        """The policy now serving."""
        return self._policy

    def replace(self, policy: Policy) -> None:
        """Serve policy from the next call on (an attribute store is atomic)."""
        self._policy = policy

    def authenticate(self, authorization: str | None, peer_ids: Sequence[str] = ()) -> Principal:
        """Principal for a call, or Unauthenticated.

        peer_ids are the identities of a client certificate the TLS layer has verified
        (its URI SAN, or else its first DNS SAN). A bearer token, when sent, decides;
        without one, the first peer identity the policy names does.
        """
        policy = self._policy
        if not authorization:
            for peer_id in peer_ids:
                principal = policy.by_mtls_id.get(peer_id)
                if principal is not None:
                    return principal
            if peer_ids:
                raise Unauthenticated(
                    "the client certificate names no principal", reason="CERT_UNKNOWN"
                )
            raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or len(token) < _MIN_TOKEN_CHARS:
            raise Unauthenticated("malformed bearer token", reason="TOKEN_MALFORMED")
        principal = policy.by_token_hash.get(hash_token(token))
        if principal is None:
            raise Unauthenticated("unknown bearer token", reason="TOKEN_UNKNOWN")
        return principal


__all__ = ["Policy", "TokenAuthenticator", "hash_token", "load_policy_file"]
