"""A KEK kept in a local file (0600): the embedded default for `make run`."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bucketvault.errors import CryptoError, FailedPrecondition

_KEY_BYTES = 32
_NONCE_BYTES = 12


class LocalKeyProvider:
    """AES-256-GCM key wrapping with a key held in memory (loaded from a file)."""

    def __init__(self, key: bytes, kek_id: str) -> None:
        if len(key) != _KEY_BYTES:
            raise FailedPrecondition("a local KEK must be 32 bytes", reason="INVALID_KEK")
        self._aead = AESGCM(key)
        self.kek_id = kek_id

    def __repr__(self) -> str:
        return f"LocalKeyProvider(kek_id={self.kek_id!r})"

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> LocalKeyProvider:
        """Load the KEK, generating it (0600, never overwritten) on first use."""
        if not path.exists():
            if not create:
                raise FailedPrecondition(f"KEK file {path} does not exist", reason="KEK_MISSING")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_EXCL: two processes starting together must not both write a key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(_KEY_BYTES))
        if path.stat().st_mode & 0o077:
            raise FailedPrecondition(
                f"KEK file {path} is readable by group or others; chmod 600 it",
                reason="KEK_PERMISSIONS",
            )
        key = path.read_bytes()
        # The id names the key without revealing it: a truncated hash under a label.
        kek_id = "file:" + hashlib.sha256(b"bucketvault-kek-id|" + key).hexdigest()[:16]
        return cls(key, kek_id)

    def wrap(self, dek: bytes, associated_data: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, dek, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], associated_data
            )
        except (InvalidTag, ValueError) as exc:
            raise CryptoError("a data key failed to unwrap", reason="UNWRAP_FAILED") from exc


__all__ = ["LocalKeyProvider"]
