"""Open credential handles, one per active credential version, opened once.

Opening means decrypting the envelope (a KMS call when the KEK is remote), parsing the
secret with its kind's spec and letting the provider build its handle. That runs under
a lock per credential, so the first use of one credential never waits behind another's
network call, and concurrent first uses of the same one open it once.

The signing path also keeps what it read of the store for RECENT_SECONDS: the mount
(``recent_mount``) and the credential's active record behind an open handle. A rebind or
a revoke made through this process drops them at once; one made by another replica
sharing the store is seen here within RECENT_SECONDS.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bucketvault.clock import Clock
from bucketvault.crypto.envelope import Envelope, associated_data
from bucketvault.errors import FailedPrecondition, NotFound
from bucketvault.models import Credential, CredentialState, Mount
from bucketvault.observe.handles import counting
from bucketvault.observe.metrics import NO_METRICS, Metrics
from bucketvault.providers.base import CredentialHandle
from bucketvault.providers.kinds import ParseContext, decode_secret
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.providers.rules import UrlCache
from bucketvault.store.base import Store, StoredCredential
from bucketvault.urlpolicy import UrlPolicy

V = TypeVar("V")
# How long the signing path trusts what it read of a mount or an active credential.
RECENT_SECONDS = 1.0
_RECENT_ENTRIES = 10_000


class Recent(Generic[V]):
    """Values read within the last RECENT_SECONDS (monotonic), at most _RECENT_ENTRIES."""

    def __init__(self, seconds: float = RECENT_SECONDS) -> None:
        self._seconds = seconds
        self._values: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value if it was put recently."""
        found = self._values.get(key)
        if found is None or time.monotonic() - found[0] > self._seconds:
            return None
        return found[1]

    def put(self, key: Hashable, value: V) -> None:
        """Remember value as read now."""
        with self._lock:
            if len(self._values) >= _RECENT_ENTRIES:
                self._values.clear()
            self._values[key] = (time.monotonic(), value)

    def drop(self, matches: Callable[[Hashable], bool]) -> None:
        """Forget every key that matches."""
        with self._lock:
            for key in [k for k in self._values if matches(k)]:
                del self._values[key]


def credential_ad(c: Credential) -> bytes:
    """The associated data binding a credential's ciphertext to its identity."""
    return associated_data("credential", c.tenant, c.credential_id, c.kind.value, c.record_version)


@dataclass(frozen=True)
class ExternalIds:
    """Each tenant's ExternalId: random, issued by us on first use, fixed forever.

    Never chosen by a caller: that is the confused-deputy defence for role kinds.
    """

    store: Store
    clock: Clock

    def __call__(self, tenant: str) -> str:
        """The tenant's ExternalId (stored on first call)."""
        candidate = "bv-" + secrets.token_hex(20)
        return self.store.ensure_external_id(tenant, candidate, self.clock.now())


@dataclass(frozen=True)
class Handles:
    """Credential handles by (credential id, record version); thread-safe."""

    store: Store
    envelope: Envelope
    registry: ProviderRegistry
    url_policy: UrlPolicy
    external_ids: ExternalIds
    # Counts the URLs each handle signs, by cloud family.
    metrics: Metrics = NO_METRICS
    # Stable URLs signed with these handles (providers/rules.py), dropped with them.
    urls: UrlCache = field(default_factory=UrlCache, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _handles: dict[tuple[str, int], CredentialHandle] = field(default_factory=dict, repr=False)
    _opening: dict[tuple[str, int], threading.Lock] = field(default_factory=dict, repr=False)
    # The tenant of each credential with an open handle, for evict_revoked().
    _tenant_of: dict[str, str] = field(default_factory=dict, repr=False)
    _mounts: Recent[Mount] = field(default_factory=Recent, repr=False)
    _active: Recent[Credential] = field(default_factory=Recent, repr=False)

    def recent_mount(self, tenant: str, mount_id: str) -> Mount | None:
        """The tenant's mount as read at most RECENT_SECONDS ago (None: no such mount)."""
        mount = self._mounts.get((tenant, mount_id))
        if mount is None:
            mount = self.store.get_mount(tenant, mount_id)
            if mount is not None:
                self._mounts.put((tenant, mount_id), mount)
        return mount

    def forget_mount(self, tenant: str, mount_id: str) -> None:
        """Drop the mount's recent read and its stable URLs (rebound, moved, updated or
        deleted)."""
        self._mounts.drop(lambda k: k == (tenant, mount_id))
        self.urls.forget_mount(mount_id)

    def stored(self, tenant: str, credential_id: str) -> StoredCredential:
        """The tenant's credential record, or NOT_FOUND."""
        stored = self.store.get_credential(tenant, credential_id)
        if stored is None:
            raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND")
        return stored

    def for_mount(self, mount: Mount) -> tuple[Credential, CredentialHandle]:
        """The mount's credential and its open handle (opened now if need be)."""
        recent = self._active.get((mount.tenant, mount.credential_id))
        if recent is not None:
            handle = self._handles.get((recent.credential_id, recent.record_version))
            if handle is not None:
                return recent, handle
        stored = self.stored(mount.tenant, mount.credential_id)
        cred = stored.credential
        if cred.state is CredentialState.REVOKED or stored.envelope is None:
            self.evict(cred.credential_id)
            raise FailedPrecondition(
                "the mount's credential has been revoked; rebind the mount",
                reason="CREDENTIAL_REVOKED",
            )
        slot = (cred.credential_id, cred.record_version)
        handle = self._handles.get(slot)
        if handle is not None:
            self._active.put((cred.tenant, cred.credential_id), cred)
            return cred, handle
        with self._lock:
            opening = self._opening.setdefault(slot, threading.Lock())
        with opening:
            handle = self._handles.get(slot)
            if handle is None:
                handle = self._open(cred, stored.envelope)
                with self._lock:
                    self._handles[slot] = handle
                    self._opening.pop(slot, None)
                    self._tenant_of[cred.credential_id] = cred.tenant
        self._active.put((cred.tenant, cred.credential_id), cred)
        return cred, handle

    def _open(self, cred: Credential, envelope: bytes) -> CredentialHandle:
        provider = self.registry.provider(cred.kind)
        plaintext = self.envelope.decrypt(envelope, credential_ad(cred))
        document, _ = decode_secret(plaintext)
        context = ParseContext(cred.tenant, self.url_policy, lambda: self.external_ids(cred.tenant))
        secret = provider.kinds[cred.kind].reopen(document, context)
        return counting(provider.open(cred, secret), provider.name, self.metrics)

    def evict(self, credential_id: str) -> None:
        """Close and forget every handle of a credential (revoked), and its cached URLs."""
        self._active.drop(lambda k: isinstance(k, tuple) and k[1] == credential_id)
        self.urls.forget(credential_id)
        with self._lock:
            gone = [k for k in self._handles if k[0] == credential_id]
            handles = [self._handles.pop(k) for k in gone]
            self._tenant_of.pop(credential_id, None)
        for handle in handles:
            handle.close()

    def open_credentials(self) -> frozenset[str]:
        """Ids of the credentials this process holds an open handle for."""
        with self._lock:
            return frozenset(k[0] for k in self._handles)

    def evict_revoked(self) -> int:
        """Close the handles of credentials revoked (or deleted) since they were opened.

        for_mount() reads the credential's state on every request, so a revoked handle is
        never used; but a replica that no longer serves a mount bound to it would keep
        the opened secret in memory until it stops. The service runs this periodically.
        """
        with self._lock:
            held = dict(self._tenant_of)
        evicted = 0
        for credential_id, tenant in held.items():
            stored = self.store.get_credential(tenant, credential_id)
            if (
                stored is None
                or stored.credential.state is CredentialState.REVOKED
                or stored.envelope is None
            ):
                self.evict(credential_id)
                evicted += 1
        return evicted

    def close(self) -> None:
        """Close every handle (shutdown)."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        self.urls.clear()
        for handle in handles:
            handle.close()


__all__ = ["ExternalIds", "Handles", "credential_ad"]
