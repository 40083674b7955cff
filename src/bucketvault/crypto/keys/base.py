"""The KeyProvider seam: something that wraps and unwraps data keys with a KEK.

Like tink's KMS AEAD: two calls, nothing more. The KEK never leaves the provider.
"""

from __future__ import annotations

from typing import Protocol


class KeyProvider(Protocol):
    # Stable, non-secret identifier written into every envelope header.
    kek_id: str

    def wrap(self, dek: bytes, associated_data: bytes) -> bytes:
        """Encrypt a data key under the KEK, bound to associated_data."""
        ...

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        """Decrypt a wrapped data key; raises CryptoError on any mismatch."""
        ...


__all__ = ["KeyProvider"]
