"""Keys the service owns: HPKE registration key pairs and the fingerprint key.

Their private parts are stored envelope-encrypted under the KEK, like credentials, and
are decrypted once into memory.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from hashlib import sha256

from bucketvault.clock import Clock
from bucketvault.crypto import hpke
from bucketvault.crypto.envelope import Envelope, associated_data
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.store.base import ServiceKeyRecord, Store

REGISTRATION = "registration"
FINGERPRINT = "fingerprint"


@dataclass(frozen=True)
class RegistrationKey:
    """The public key callers seal registrations to, and how to build the HPKE info."""

    key_id: str
    suite: str
    public_key: bytes
    info_template: str = hpke.INFO_TEMPLATE


def _ad(record_id: str, purpose: str) -> bytes:
    return associated_data("service-key", record_id, purpose)


class ServiceKeys:
    def __init__(self, store: Store, envelope: Envelope, clock: Clock) -> None:
        self._store = store
        self._envelope = envelope
        self._clock = clock
        self._lock = threading.Lock()
        self._private: dict[str, bytes] = {}
        self._fingerprint_key = b""

    def __repr__(self) -> str:
        return "ServiceKeys()"

    def ensure(self) -> None:
        """Create a registration key per suite and the fingerprint key if missing."""
        for suite in hpke.Suite:
            if self._current(suite) is None:
                private, public = hpke.generate(suite)
                self._add(REGISTRATION, suite.value, public, private)
        if not self._store.list_service_keys(FINGERPRINT):
            self._add(FINGERPRINT, "", b"", secrets.token_bytes(32))
        record = self._store.list_service_keys(FINGERPRINT)[0]
        self._fingerprint_key = self._envelope.decrypt(
            record.envelope, _ad(record.key_id, FINGERPRINT)
        )

    def _add(self, purpose: str, suite: str, public: bytes, secret: bytes) -> None:
        key_id = ("rk_" if purpose == REGISTRATION else "fk_") + secrets.token_hex(8)
        self._store.add_service_key(
            ServiceKeyRecord(
                key_id=key_id,
                purpose=purpose,
                suite=suite,
                public_key=public,
                envelope=self._envelope.encrypt(secret, _ad(key_id, purpose)),
                created_at=self._clock.now(),
            )
        )

    def _current(self, suite: hpke.Suite) -> ServiceKeyRecord | None:
        live = [
            k
            for k in self._store.list_service_keys(REGISTRATION)
            if k.suite == suite.value and k.retired_at is None
        ]
        return live[-1] if live else None

    def registration_key(self, suite: str) -> RegistrationKey:
        """The public registration key callers should seal to (suite by name)."""
        try:
            chosen = hpke.Suite(suite)
        except ValueError:
            raise InvalidArgument(
                "unknown HPKE suite", reason="INVALID_FIELD", field="suite"
            ) from None
        record = self._current(chosen)
        if record is None:
            raise FailedPrecondition("no registration key exists", reason="NO_REGISTRATION_KEY")
        return RegistrationKey(record.key_id, record.suite, record.public_key)

    def unseal(self, key_id: str, tenant: str, kind: str, sealed: bytes) -> bytes:
        """Open a sealed registration made for tenant and kind with key_id."""
        record = self._store.get_service_key(key_id) if key_id else None
        if record is None or record.purpose != REGISTRATION or record.retired_at is not None:
            raise FailedPrecondition(
                "unknown or retired registration key; fetch GetRegistrationKey and seal again",
                reason="UNKNOWN_REGISTRATION_KEY",
                field="sealed_secret.key_id",
            )
        with self._lock:
            private = self._private.get(key_id)
            if private is None:
                private = self._envelope.decrypt(record.envelope, _ad(key_id, REGISTRATION))
                self._private[key_id] = private
        return hpke.open_sealed(hpke.Suite(record.suite), private, tenant, kind, sealed)

    def fingerprint(self, kind: str, canonical: bytes) -> str:
        """A keyed fingerprint: equal secrets compare equal, nothing can be learned from it."""
        digest = hmac.new(self._fingerprint_key, kind.encode() + b"\x00" + canonical, sha256)
        return "hmac-sha256:" + digest.hexdigest()[:32]


__all__ = ["FINGERPRINT", "REGISTRATION", "RegistrationKey", "ServiceKeys"]
