"""Envelope encryption: a fresh AES-256-GCM data key per record, wrapped by the KEK.

Layout (all lengths big-endian)::

    b"BVE" | version (1) | len(kek_id) (2) | kek_id | len(wrapped_dek) (2) | wrapped_dek
          | nonce (12) | ciphertext+tag

The same associated data binds both the ciphertext and the wrapped key, so neither can
be moved to another record. KEK rotation replaces only the wrapped key (``rewrap``).
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bucketvault.crypto.keys import KeyProvider, KeyRing
from bucketvault.errors import CryptoError, Internal

MAGIC = b"BVE"
VERSION = 1
_NONCE = 12


def associated_data(*parts: str | int) -> bytes:
    """Length-prefixed join: unambiguous, so ("a|b", "c") never equals ("a", "b|c")."""
    out = bytearray()
    for part in parts:
        raw = str(part).encode("utf-8")
        out += struct.pack(">I", len(raw)) + raw
    return bytes(out)


def _split(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    try:
        if blob[:3] != MAGIC or blob[3] != VERSION:
            raise CryptoError("unknown envelope format", reason="INVALID_ENVELOPE")
        pos = 4
        (n,) = struct.unpack_from(">H", blob, pos)
        kek_id = blob[pos + 2 : pos + 2 + n].decode("utf-8")
        pos += 2 + n
        (m,) = struct.unpack_from(">H", blob, pos)
        wrapped = blob[pos + 2 : pos + 2 + m]
        pos += 2 + m
        nonce, body = blob[pos : pos + _NONCE], blob[pos + _NONCE :]
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise CryptoError("truncated envelope", reason="INVALID_ENVELOPE") from exc
    if len(nonce) != _NONCE or not body:
        raise CryptoError("truncated envelope", reason="INVALID_ENVELOPE")
    return kek_id, wrapped, nonce, body


def _join(kek_id: str, wrapped: bytes, nonce: bytes, body: bytes) -> bytes:
    kid = kek_id.encode("utf-8")
    return b"".join(
        (
            MAGIC,
            bytes([VERSION]),
            struct.pack(">H", len(kid)),
            kid,
            struct.pack(">H", len(wrapped)),
            wrapped,
            nonce,
            body,
        )
    )


class Envelope:
    """Encrypts and decrypts records under the key ring's KEKs."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def kek_id_of(self, blob: bytes) -> str:
        return _split(blob)[0]

    @property
    def current_kek_id(self) -> str:
        """The KEK new records are wrapped under."""
        return self._keys.current.kek_id

    @staticmethod
    def ciphertext_of(blob: bytes) -> bytes:
        """Nonce and ciphertext: the part of an envelope a re-wrap never changes."""
        _, _, nonce, body = _split(blob)
        return nonce + body

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """Seal under a fresh DEK; decrypts the result once before returning it."""
        kek = self._keys.current
        dek = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE)
        body = AESGCM(dek).encrypt(nonce, plaintext, ad)
        blob = _join(kek.kek_id, kek.wrap(dek, ad), nonce, body)
        # Decrypt-after-encrypt: a KEK or KMS fault must surface now, not on first use.
        if self.decrypt(blob, ad) != plaintext:
            raise Internal("envelope self-check failed", reason="ENVELOPE_SELF_CHECK")
        return blob

    def decrypt(self, blob: bytes, ad: bytes) -> bytes:
        kek_id, wrapped, nonce, body = _split(blob)
        dek = self._keys.get(kek_id).unwrap(wrapped, ad)
        try:
            return AESGCM(dek).decrypt(nonce, body, ad)
        except (InvalidTag, ValueError) as exc:
            raise CryptoError("a record failed to decrypt", reason="DECRYPT_FAILED") from exc

    def rewrap(self, blob: bytes, ad: bytes, to: KeyProvider | None = None) -> bytes:
        """Re-wrap the DEK under another KEK (default: the current one); ciphertext untouched."""
        target = to or self._keys.current
        kek_id, wrapped, nonce, body = _split(blob)
        dek = self._keys.get(kek_id).unwrap(wrapped, ad)
        rewrapped = target.wrap(dek, ad)
        # Unwrap-after-wrap: the caller replaces the only copy of the old wrapped key.
        if target.unwrap(rewrapped, ad) != dek:
            raise Internal("re-wrap self-check failed", reason="ENVELOPE_SELF_CHECK")
        return _join(target.kek_id, rewrapped, nonce, body)


__all__ = ["MAGIC", "VERSION", "Envelope", "associated_data"]
