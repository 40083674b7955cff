"""Policy files with grants for the core tests, and a server started on one."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bucketvault.auth.authn import hash_token
from bucketvault.service import ADMIN_TOKEN_FILE
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import RunningServer, start_server

ADMIN = {"name": "admin", "roles": ["signer", "operator", "auditor"], "tenants": ["*"]}


def write_policy(path: Path, entries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A policy file (0600) with a fresh token per entry; returns the tokens by name."""
    tokens: dict[str, str] = {}
    principals = []
    for entry in entries:
        token = "bv_" + secrets.token_urlsafe(32)
        tokens[str(entry["name"])] = token
        principals.append({**entry, "token_sha256": hash_token(token)})
    path.write_text(json.dumps({"principals": principals}, indent=2))
    path.chmod(0o600)
    return tokens


@contextmanager
def policy_server(
    tmp_path: Path,
    entries: Sequence[Mapping[str, Any]],
    keys: Sequence[str] = ("a.jpg",),
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningServer]:
    """A server whose policy holds an all-tenant admin and entries; its mounts sign and
    list in-process (testing.fakes.local_providers), listing keys."""
    data_dir = tmp_path / f"bv-{secrets.token_hex(4)}"
    data_dir.mkdir(mode=0o700)
    tokens = write_policy(data_dir / "policy.json", [ADMIN, *entries])
    (data_dir / ADMIN_TOKEN_FILE).write_text(tokens["admin"] + "\n")
    (data_dir / ADMIN_TOKEN_FILE).chmod(0o600)
    with start_server(tmp_path, data_dir=data_dir, providers=local_providers(keys), env=env) as srv:
        srv.tokens.update(tokens)
        yield srv
