"""Keys the service owns: HPKE registration key pairs, the fingerprint key, the audit
signing key, the link MAC key and the page-token MAC key.

Their private parts are stored envelope-encrypted under the KEK, like credentials, and
are decrypted once into memory.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bucketvault.audit.signing import AuditSigner, TrustedKeys, key_id_of
from bucketvault.clock import Clock
from bucketvault.crypto import hpke
from bucketvault.crypto.envelope import Envelope, associated_data
from bucketvault.errors import BucketVaultError, FailedPrecondition, InvalidArgument
from bucketvault.store.base import ServiceKeyRecord, Store

log = logging.getLogger(__name__)

REGISTRATION = "registration"
FINGERPRINT = "fingerprint"
AUDIT_SIGNING = "audit-signing"
LINK_MAC = "link-mac"
PAGE_TOKEN = "page-token"
# The id prefix of each MAC key purpose's keys.
_MAC_KID = {LINK_MAC: "lk_", PAGE_TOKEN: "pk_"}


@dataclass(frozen=True)
class RegistrationKey:
    """The public key callers seal registrations to, and how to build the HPKE info."""

    key_id: str
    suite: str
    public_key: bytes
    info_template: str = hpke.INFO_TEMPLATE


def service_key_ad(record_id: str, purpose: str) -> bytes:
    """The associated data binding a service key's envelope to its id and purpose."""
    return associated_data("service-key", record_id, purpose)


_ad = service_key_ad


@dataclass(frozen=True)
class Rotated:
    """One suite's registration key rotation: the new current key, and until when the
    previous one (if any) is still accepted."""

    suite: str
    new_key_id: str
    previous_key_id: str = ""
    previous_accepted_until: datetime | None = None


class ServiceKeys:
    def __init__(self, store: Store, envelope: Envelope, clock: Clock) -> None:
        self._store = store
        self._envelope = envelope
        self._clock = clock
        self._lock = threading.Lock()
        self._private: dict[str, bytes] = {}
        self._fingerprint_key = b""
        self._audit_signer: AuditSigner | None = None
        self._audit_keys = TrustedKeys({})
        # purpose -> (the id of the key that signs, every trusted key by id)
        self._mac_keys: dict[str, tuple[str, dict[str, bytes]]] = {}

    def __repr__(self) -> str:
        return "ServiceKeys()"

    def ensure(self) -> None:
        """Create a registration key per suite, the fingerprint key and the audit signing
        key if missing, and load the secret ones."""
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
        if not self._store.list_service_keys(AUDIT_SIGNING):
            signing_key = Ed25519PrivateKey.generate()
            self._add(
                AUDIT_SIGNING,
                "ed25519",
                _raw_public(signing_key),
                signing_key.private_bytes_raw(),
                key_id=key_id_of(signing_key.public_key()),
            )
        self._load_audit_keys()
        for purpose in (LINK_MAC, PAGE_TOKEN):
            if not self._store.list_service_keys(purpose):
                kid = _MAC_KID[purpose] + secrets.token_hex(8)
                self._add(purpose, "hmac-sha256", b"", secrets.token_bytes(32), key_id=kid)
            self._load_mac_keys(purpose)

    def _load_mac_keys(self, purpose: str) -> None:
        """Every MAC key of purpose that opens under the KEK (bound to its id); the newest
        live one signs new tokens, retired ones still verify old ones."""
        keys: dict[str, bytes] = {}
        current = ""
        now = self._clock.now()
        for record in self._store.list_service_keys(purpose):
            # A retired link key verifies nothing: retiring it is how its links are ended
            # (after a rotation, once the links still wanted were re-issued).
            if purpose == LINK_MAC and record.retired_at is not None and now >= record.retired_at:
                continue
            try:
                keys[record.key_id] = self._envelope.decrypt(
                    record.envelope, _ad(record.key_id, purpose)
                )
            except BucketVaultError:
                log.error(
                    "%s key %s does not open under the KEK: not trusted", purpose, record.key_id
                )
                continue
            if record.retired_at is None:
                current = record.key_id
        if not current:
            reason = "NO_LINK_KEY" if purpose == LINK_MAC else "NO_PAGE_TOKEN_KEY"
            raise FailedPrecondition(f"no usable {purpose} key", reason=reason)
        self._mac_keys[purpose] = (current, keys)

    def _load_audit_keys(self) -> None:
        """Trust an audit key only if its private half opens under the KEK.

        The public_key column is not read: whoever can write the database could add a
        row with a public key of their own and sign forged checkpoints with it. An
        envelope that decrypts under the KEK (bound to the key id) cannot be forged.
        """
        signers: list[AuditSigner] = []
        for record in self._store.list_service_keys(AUDIT_SIGNING):
            try:
                secret = self._envelope.decrypt(record.envelope, _ad(record.key_id, AUDIT_SIGNING))
                signer = AuditSigner(Ed25519PrivateKey.from_private_bytes(secret))
            except (BucketVaultError, ValueError):
                log.error("audit key %s does not open under the KEK: not trusted", record.key_id)
                continue
            if signer.key_id != record.key_id:
                log.error("audit key %s is stored under another id: not trusted", record.key_id)
                continue
            if record.retired_at is None:
                signers.append(signer)
            self._audit_keys = TrustedKeys(
                {**self._audit_keys.keys, signer.key_id: signer.public_key}
            )
        if not signers:
            raise FailedPrecondition("no usable audit signing key", reason="NO_AUDIT_SIGNING_KEY")
        self._audit_signer = signers[-1]

    def rotate_registration_keys(self, overlap: timedelta) -> list[Rotated]:
        """A new current registration key per suite; each previous one is still accepted
        for overlap, then refused (REGISTRATION_KEY_RETIRED).

        The end of the window is stored with the key (retired_at), so every replica
        reading the store agrees on it and a restart does not move it.
        """
        if overlap < timedelta(0):
            raise InvalidArgument("the overlap window cannot be negative", reason="INVALID_FIELD")
        until = self._clock.now() + overlap
        out: list[Rotated] = []
        for suite in hpke.Suite:
            previous = self._current(suite)
            private, public = hpke.generate(suite)
            # The new key first: there is never a moment without a current key.
            new_id = self._add(REGISTRATION, suite.value, public, private)
            if previous is None:
                out.append(Rotated(suite.value, new_id))
                continue
            self._store.retire_service_key(previous.key_id, until)
            out.append(Rotated(suite.value, new_id, previous.key_id, until))
        return out

    def rotate_link_key(self) -> tuple[str, str]:
        """A new link key that signs new links from the next start; the previous one keeps
        verifying its links until retire_link_key. (new id, previous id)."""
        live = [k for k in self._store.list_service_keys(LINK_MAC) if k.retired_at is None]
        new_id = _MAC_KID[LINK_MAC] + secrets.token_hex(8)
        self._add(LINK_MAC, "hmac-sha256", b"", secrets.token_bytes(32), key_id=new_id)
        return new_id, live[-1].key_id if live else ""

    def retire_link_key(self, key_id: str) -> None:
        """Links signed with key_id answer 404 from the next start on. The newest live key
        cannot be retired: new links need a key (rotate first)."""
        live = [k.key_id for k in self._store.list_service_keys(LINK_MAC) if k.retired_at is None]
        if key_id not in live:
            raise InvalidArgument(f"{key_id} is not a live link key", reason="INVALID_FIELD")
        if key_id == live[-1]:
            raise FailedPrecondition(
                f"{key_id} signs new links: rotate the link key first", reason="NO_LINK_KEY"
            )
        self._store.retire_service_key(key_id, self._clock.now())

    def _add(
        self, purpose: str, suite: str, public: bytes, secret: bytes, *, key_id: str = ""
    ) -> str:
        key_id = key_id or ("rk_" if purpose == REGISTRATION else "fk_") + secrets.token_hex(8)
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
        return key_id

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
        if record is None or record.purpose != REGISTRATION:
            raise FailedPrecondition(
                "unknown registration key; fetch GetRegistrationKey and seal again",
                reason="UNKNOWN_REGISTRATION_KEY",
                field="sealed_secret.key_id",
            )
        # A rotated key is accepted until its overlap window ends (retired_at).
        if record.retired_at is not None and self._clock.now() >= record.retired_at:
            with self._lock:
                self._private.pop(key_id, None)
            raise FailedPrecondition(
                f"registration key {key_id} was rotated and its overlap window ended at "
                f"{record.retired_at.isoformat()}; fetch GetRegistrationKey and seal again",
                reason="REGISTRATION_KEY_RETIRED",
                field="sealed_secret.key_id",
            )
        with self._lock:
            private = self._private.get(key_id)
            if private is None:
                private = self._envelope.decrypt(record.envelope, _ad(key_id, REGISTRATION))
                self._private[key_id] = private
        return hpke.open_sealed(hpke.Suite(record.suite), private, tenant, kind, sealed)

    def audit_signer(self) -> AuditSigner:
        """The key the audit checkpoints are signed with (after ensure())."""
        if self._audit_signer is None:
            raise FailedPrecondition("no usable audit signing key", reason="NO_AUDIT_SIGNING_KEY")
        return self._audit_signer

    def audit_keys(self) -> TrustedKeys:
        """Every audit key whose private half opened under the KEK, retired ones included."""
        return self._audit_keys

    def link_keys(self) -> tuple[str, dict[str, bytes]]:
        """The id of the key new links are signed with, and every trusted link key by id."""
        return self._mac(LINK_MAC)

    def page_token_keys(self) -> tuple[str, dict[str, bytes]]:
        """The id of the key new page tokens are signed with, and every trusted one by id."""
        return self._mac(PAGE_TOKEN)

    def _mac(self, purpose: str) -> tuple[str, dict[str, bytes]]:
        current, keys = self._mac_keys.get(purpose, ("", {}))
        return current, dict(keys)

    def fingerprint(self, kind: str, canonical: bytes) -> str:
        """A keyed fingerprint: equal secrets compare equal, nothing can be learned from it."""
        digest = hmac.new(self._fingerprint_key, kind.encode() + b"\x00" + canonical, sha256)
        return "hmac-sha256:" + digest.hexdigest()[:32]


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


__all__ = [
    "AUDIT_SIGNING",
    "FINGERPRINT",
    "LINK_MAC",
    "PAGE_TOKEN",
    "REGISTRATION",
    "RegistrationKey",
    "Rotated",
    "ServiceKeys",
    "service_key_ad",
]
