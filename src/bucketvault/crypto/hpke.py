"""HPKE (RFC 9180) base-mode single-shot sealing of credential registrations.

Shared by the server (unseal) and the SDK/CLI (seal). The ``info`` binds tenant and
credential kind, so a blob sealed for one tenant or kind cannot be replayed into another.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from bucketvault.errors import CryptoError, InvalidArgument

INFO_TEMPLATE = "bucketvault/v1/register|{tenant}|{KIND}"
_X25519_PUB = 32
_MLKEM768_PUB = 1184
_MLKEM768_SEED = 64


class Suite(enum.Enum):
    X25519_SHA256_AES256GCM = "X25519_SHA256_AES256GCM"
    MLKEM768_X25519_SHA256_AES256GCM = "MLKEM768_X25519_SHA256_AES256GCM"


_SUITES = {
    Suite.X25519_SHA256_AES256GCM: hpke.Suite(
        hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
    Suite.MLKEM768_X25519_SHA256_AES256GCM: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}


def info_for(tenant: str, kind: str) -> bytes:
    return INFO_TEMPLATE.format(tenant=tenant, KIND=kind).encode("utf-8")


def generate(suite: Suite) -> tuple[bytes, bytes]:
    """A new key pair as (private bytes, public bytes) in this module's raw encodings.

    Hybrid keys are encoded ML-KEM part first: private = 64-byte ML-KEM seed || X25519
    private; public = ML-KEM-768 public (1184 bytes) || X25519 public (32 bytes).
    """
    xk = x25519.X25519PrivateKey.generate()
    x_priv, x_pub = xk.private_bytes_raw(), xk.public_key().public_bytes_raw()
    if suite is Suite.X25519_SHA256_AES256GCM:
        return x_priv, x_pub
    mk = mlkem.MLKEM768PrivateKey.generate()
    return mk.private_bytes_raw() + x_priv, mk.public_key().public_bytes_raw() + x_pub


def _public(suite: Suite, public: bytes) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
    try:
        if suite is Suite.X25519_SHA256_AES256GCM:
            return x25519.X25519PublicKey.from_public_bytes(public)
        if len(public) != _MLKEM768_PUB + _X25519_PUB:
            raise ValueError("wrong hybrid public key length")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public[:_MLKEM768_PUB]),
            x25519.X25519PublicKey.from_public_bytes(public[_MLKEM768_PUB:]),
        )
    except ValueError as exc:
        raise InvalidArgument(
            "malformed registration public key", reason="INVALID_PUBLIC_KEY"
        ) from exc


def _private(
    suite: Suite, private: bytes
) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
    if suite is Suite.X25519_SHA256_AES256GCM:
        return x25519.X25519PrivateKey.from_private_bytes(private)
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM768_SEED]),
        x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM768_SEED:]),
    )


def seal(suite: Suite, public: bytes, tenant: str, kind: str, plaintext: bytes) -> bytes:
    """enc || ciphertext for the service's registration key."""
    return _SUITES[suite].encrypt(plaintext, _public(suite, public), info=info_for(tenant, kind))


def open_sealed(suite: Suite, private: bytes, tenant: str, kind: str, sealed: bytes) -> bytes:
    """The plaintext, or CryptoError: wrong key, wrong tenant/kind, tampered or truncated."""
    try:
        return _SUITES[suite].decrypt(sealed, _private(suite, private), info=info_for(tenant, kind))
    except (InvalidTag, ValueError) as exc:
        raise CryptoError(
            "the sealed secret does not open for this tenant, kind and key",
            reason="UNSEAL_FAILED",
            field="sealed_secret",
        ) from exc


__all__ = ["INFO_TEMPLATE", "Suite", "generate", "info_for", "open_sealed", "seal"]
