"""Minting a bearer token into a policy file: the token is shown once, only its hash kept.

The file is rewritten atomically (a 0600 temporary file in the same directory, checked
by the server's own parser, then renamed over the old one), so a running server's
watcher (auth/reload.py) sees the old file or the new one, never half of either; other
entries are kept as they were written.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bucketvault.auth.authn import hash_token, load_policy_file
from bucketvault.errors import AlreadyExists, InvalidArgument

TOKEN_PREFIX = "bv_"


def new_token() -> str:
    """A fresh random bearer token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"principals": []}
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"cannot read policy file {path}", reason="INVALID_POLICY") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("principals"), list):
        raise InvalidArgument("policy file needs a 'principals' list", reason="INVALID_POLICY")
    return doc


def write_policy_atomically(path: Path, doc: Mapping[str, Any]) -> None:
    """Replace path with doc (0600) if the server would accept it; else leave it alone."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        load_policy_file(Path(tmp))  # the server's parser: refuse to install a bad file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_token(path: Path, entry: Mapping[str, Any], *, replace: bool = False) -> str:
    """Add entry (without its token_sha256) under a new token; returns the token.

    A principal of the same name is refused unless replace, which swaps it in place.
    """
    doc = _read(path)
    name = entry.get("name")
    principals: list[Any] = list(doc["principals"])
    same = [i for i, e in enumerate(principals) if isinstance(e, dict) and e.get("name") == name]
    if same and not replace:
        raise AlreadyExists(
            f"the policy already has a principal named {name!r} (use --replace)",
            reason="ALREADY_EXISTS",
        )
    token = new_token()
    new = {**entry, "token_sha256": hash_token(token)}
    if same:
        principals[same[0]] = new
    else:
        principals.append(new)
    write_policy_atomically(path, {**doc, "principals": principals})
    return token


__all__ = ["TOKEN_PREFIX", "create_token", "new_token", "write_policy_atomically"]
