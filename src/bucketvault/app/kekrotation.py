"""KEK rotation: count records per KEK, and re-wrap data keys under the current KEK.

Only the wrapped data key in each envelope header changes; nonce and ciphertext stay
byte for byte (``Envelope.ciphertext_of``). Every write is a compare-and-swap on the
whole envelope, so a record revoked (envelope dropped) while the re-wrap runs stays
revoked, and a run can be stopped and started again at any point: what is already
under the target KEK is skipped. Running replicas keep serving throughout, provided
each has both KEKs in its key ring (README, "Key rotation and replicas").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bucketvault.app.handles import credential_ad
from bucketvault.app.servicekeys import service_key_ad
from bucketvault.crypto.envelope import Envelope
from bucketvault.errors import BucketVaultError
from bucketvault.store.base import Store

CREDENTIAL = "credential"
SERVICE_KEY = "service_key"


@dataclass
class KekCount:
    """How many live envelopes one KEK wraps."""

    kek_id: str
    credentials: int = 0
    service_keys: int = 0

    @property
    def total(self) -> int:
        return self.credentials + self.service_keys


def kek_status(store: Store, envelope: Envelope) -> dict[str, KekCount]:
    """Live envelopes per KEK id, read from the headers alone (nothing is unwrapped)."""
    counts: dict[str, KekCount] = {}
    for kind, _, blob in store.iter_envelopes():
        kek_id = envelope.kek_id_of(blob)
        count = counts.setdefault(kek_id, KekCount(kek_id))
        if kind == CREDENTIAL:
            count.credentials += 1
        else:
            count.service_keys += 1
    return counts


@dataclass
class RewrapProgress:
    """What a re-wrap run did so far."""

    target: str
    total: int
    rewrapped: int = 0
    already: int = 0
    # Revoked (or deleted) while the run looked at them: nothing left to re-wrap.
    gone: int = 0
    # Could not be unwrapped (e.g. a KEK missing from the ring); left as they were.
    failed: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.rewrapped + self.already + self.gone + len(self.failed)


# A compare-and-swap that lost to a concurrent write is retried with a fresh read.
_CAS_ATTEMPTS = 5


def rewrap_all(
    store: Store,
    envelope: Envelope,
    *,
    batch: int = 100,
    pause_seconds: float = 0.0,
    progress: Callable[[RewrapProgress], None] | None = None,
) -> RewrapProgress:
    """Re-wrap every live data key under envelope's current KEK.

    batch: report progress (and pause, to spare a KMS) every that many records.
    """
    target = envelope.current_kek_id
    state = RewrapProgress(target, sum(c.total for c in kek_status(store, envelope).values()))

    def step() -> None:
        if state.seen % batch == 0:
            if progress is not None:
                progress(state)
            if pause_seconds:
                time.sleep(pause_seconds)

    for stored in store.iter_live_credentials():
        cred = stored.credential
        blob = stored.envelope
        for _ in range(_CAS_ATTEMPTS):
            if blob is None:
                state.gone += 1
                break
            if envelope.kek_id_of(blob) == target:
                state.already += 1
                break
            try:
                new = envelope.rewrap(blob, credential_ad(cred))
            except BucketVaultError:
                state.failed.append(cred.credential_id)
                break
            if store.replace_credential_envelope(cred.credential_id, blob, new):
                state.rewrapped += 1
                break
            fresh = store.get_credential(cred.tenant, cred.credential_id)
            blob = None if fresh is None else fresh.envelope
        else:
            state.failed.append(cred.credential_id)
        step()
    for kind, key_id, _ in store.iter_envelopes():
        if kind != SERVICE_KEY:
            continue
        record = store.get_service_key(key_id)
        if record is None:
            state.gone += 1
        elif envelope.kek_id_of(record.envelope) == target:
            state.already += 1
        else:
            try:
                new = envelope.rewrap(record.envelope, service_key_ad(key_id, record.purpose))
            except BucketVaultError:
                state.failed.append(key_id)
            else:
                # Service key envelopes are written once and only ever re-wrapped.
                if store.replace_service_key_envelope(key_id, record.envelope, new):
                    state.rewrapped += 1
                else:
                    state.failed.append(key_id)
        step()
    if progress is not None:
        progress(state)
    return state


__all__ = ["KekCount", "RewrapProgress", "kek_status", "rewrap_all"]
