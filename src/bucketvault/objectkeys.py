"""Rules every object key and listing prefix must pass before any provider sees it.

Keys are full object names (the mount's prefix included). The same rules hold for
every cloud so that a mount behaves the same whichever bucket it points at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bucketvault.errors import BucketVaultError, InvalidArgument, PermissionDenied

MAX_KEY_BYTES = 1024

# One scan for the common case (SignURLs checks up to 1000 keys per call): control
# characters, lone surrogates, or a "." / ".." segment. Only a hit takes the slow path
# that works out which rule failed, for the error message.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]|(?:^|/)\.\.?(?:/|$)").search


def _has_control(value: str) -> bool:
    # C0, DEL and C1 controls: they break logs and some stores treat them specially.
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


def _has_dot_segment(value: str) -> bool:
    # "." and ".." segments are normalised away by some HTTP stacks and proxies, so a
    # URL for "a/../b" may fetch "b": a way out of the mount's prefix.
    return any(segment in (".", "..") for segment in value.split("/"))


def check_key(key: str, mount_prefix: str, *, field: str = "key") -> str:
    """Return the key if it is a well-formed object name under the mount's prefix."""
    if not key:
        raise InvalidArgument("the object key is empty", reason="INVALID_KEY", field=field)
    # len(key) <= 256 means at most 1024 UTF-8 bytes: skip the encode for short keys.
    if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidArgument(
            f"the object key is longer than {MAX_KEY_BYTES} UTF-8 bytes",
            reason="INVALID_KEY",
            field=field,
        )
    _check_text(key, field, "object key")
    if not key.startswith(mount_prefix):
        raise PermissionDenied(
            "the object key is outside the mount's prefix", reason="KEY_OUTSIDE_MOUNT", field=field
        )
    return key


def check_keys(keys: Sequence[str], mount_prefix: str, *, field: str = "keys") -> None:
    """check_key for every key of a batch; a refusal names the key by index (keys[3]).

    The index is formatted only on refusal: formatting it for each of a thousand keys
    cost a fifth of the check on the SignURLs hot path."""
    for i, key in enumerate(keys):
        try:
            check_key(key, mount_prefix)
        except BucketVaultError as exc:
            exc.field = f"{field}[{i}]"
            raise


def check_prefix(prefix: str, mount_prefix: str, *, field: str = "prefix") -> str:
    """Return the absolute listing prefix: empty means the mount's own prefix."""
    if not prefix:
        return mount_prefix
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidArgument("the prefix is too long", reason="INVALID_PREFIX", field=field)
    _check_text(prefix, field, "prefix", reason="INVALID_PREFIX")
    if not prefix.startswith(mount_prefix):
        raise PermissionDenied(
            "the prefix is outside the mount's prefix", reason="KEY_OUTSIDE_MOUNT", field=field
        )
    return prefix


def check_mount_prefix(prefix: str, *, field: str = "prefix") -> str:
    """A mount's own prefix: empty (whole bucket) or a well-formed key prefix."""
    if prefix:
        if prefix.startswith("/"):
            raise InvalidArgument(
                "a mount prefix must not start with '/'", reason="INVALID_PREFIX", field=field
            )
        _check_text(prefix, field, "prefix", reason="INVALID_PREFIX")
    return prefix


def _check_text(value: str, field: str, what: str, reason: str = "INVALID_KEY") -> None:
    if _SUSPECT(value) is None:
        return
    if _has_control(value):
        raise InvalidArgument(f"the {what} contains control characters", reason=reason, field=field)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidArgument(f"the {what} is not valid UTF-8", reason=reason, field=field)
    if _has_dot_segment(value):
        raise InvalidArgument(
            f"the {what} has a '.' or '..' path segment", reason=reason, field=field
        )
    raise AssertionError("unreachable: _SUSPECT matched but no rule did")  # pragma: no cover


__all__ = ["MAX_KEY_BYTES", "check_key", "check_keys", "check_mount_prefix", "check_prefix"]
