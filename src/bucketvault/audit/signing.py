"""Ed25519 signatures over audit checkpoints: what a database writer cannot forge.

The hash chain alone proves only that rows agree with each other: whoever can write the
database can delete the newest rows, or rewrite the whole chain with fresh hashes. A
checkpoint signed by the service's audit key pins a writer's chain at one point, so a
cut or rewrite behind it no longer matches a signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bucketvault.store.base import AuditCheckpoint

HEAD = "head"
VERIFIED = "verified"
PRUNED = "pruned"
KINDS = frozenset({HEAD, VERIFIED, PRUNED})

# Names the statement, so that a signature over one can never pass for another format.
_CONTEXT = "bucketvault.audit.checkpoint.v1"


def key_id_of(public: Ed25519PublicKey) -> str:
    """The key id is a digest of the public key: a pinned key file names its own id."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ak_" + hashlib.sha256(raw).hexdigest()[:16]


def payload(
    writer_id: str, seq: int, chain_hash: str, kind: str, time: datetime, key_id: str
) -> bytes:
    """The signed bytes: canonical JSON of every field of the checkpoint but the signature."""
    body = {
        "context": _CONTEXT,
        "writer_id": writer_id,
        "seq": seq,
        "hash": chain_hash,
        "kind": kind,
        "time": time.astimezone(UTC).isoformat(timespec="microseconds"),
        "key_id": key_id,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class AuditSigner:
    """The service's audit signing key; its private half never leaves this object."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def public_pem(self) -> str:
        return public_pem(self.public_key)

    def sign(
        self, writer_id: str, seq: int, chain_hash: str, kind: str, time: datetime
    ) -> AuditCheckpoint:
        """A checkpoint stating that writer_id's row seq has chain_hash."""
        key_id = self.key_id
        signature = self.private_key.sign(payload(writer_id, seq, chain_hash, kind, time, key_id))
        return AuditCheckpoint(writer_id, seq, chain_hash, kind, time, key_id, signature)


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_pem(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; anything else raises ValueError."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        # ValueError like a malformed PEM: a caller handles every bad key file one way.
        raise ValueError("not an Ed25519 public key")  # noqa: TRY004
    return key


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys checkpoints may be signed with, by key id."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def of(cls, *public: Ed25519PublicKey) -> TrustedKeys:
        return cls({key_id_of(k): k for k in public})

    def verify(self, checkpoint: AuditCheckpoint) -> bool:
        """True when a trusted key signed exactly this checkpoint."""
        key = self.keys.get(checkpoint.key_id)
        if key is None or checkpoint.kind not in KINDS:
            return False
        c = checkpoint
        try:
            key.verify(c.signature, payload(c.writer_id, c.seq, c.hash, c.kind, c.time, c.key_id))
        except InvalidSignature:
            return False
        return True


__all__ = [
    "HEAD",
    "KINDS",
    "PRUNED",
    "VERIFIED",
    "AuditSigner",
    "TrustedKeys",
    "key_id_of",
    "load_public_pem",
    "payload",
    "public_pem",
]
