"""The use cases, transport-agnostic: authorize -> load -> decrypt -> provider -> audit.

One module per use case (vault, mounts, signing, audit); ``App`` bundles them for the
transports. Every public method takes the calling Principal first. Authorization
happens before any lookup, so a denied caller learns nothing about what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bucketvault.app.audit import Audit, AuditKey
from bucketvault.app.common import Recorder, Seams
from bucketvault.app.handles import ExternalIds, Handles
from bucketvault.app.links import (
    IssuedLink,
    LinkInput,
    Links,
    LinkSettings,
    LinksInput,
    OpenInput,
    Redirect,
)
from bucketvault.app.mounts import Location, MountInput, Mounts, MountUpdate, PolicyInput, Prospect
from bucketvault.app.pagetokens import PageTokens
from bucketvault.app.servicekeys import RegistrationKey, ServiceKeys
from bucketvault.app.signing import MAX_BATCH_KEYS, ListInput, Signed, Signing, SignInput
from bucketvault.app.vault import RegisterInput, SealedSecret, Vault
from bucketvault.audit import AuditLog, VerifyResult
from bucketvault.audit.verifier import AuditVerifier
from bucketvault.clock import Clock
from bucketvault.config import Config
from bucketvault.crypto.envelope import Envelope
from bucketvault.links import LinkCodec, Revocations
from bucketvault.observe.metrics import NO_METRICS, Metrics
from bucketvault.providers.base import TrustPolicy
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.store.base import AuditFilter, AuditRow, Store


@dataclass(frozen=True)
class App:
    """The use cases of one running service."""

    vault: Vault
    mounts: Mounts
    signing: Signing
    audit: Audit
    handles: Handles
    # What the transport writes a call's record with when the use case did not.
    recorder: Recorder
    links: Links

    def close(self) -> None:
        """Close every open credential handle."""
        self.handles.close()


def build_app(
    config: Config,
    store: Store,
    envelope: Envelope,
    service_keys: ServiceKeys,
    registry: ProviderRegistry,
    audit_log: AuditLog,
    clock: Clock,
    metrics: Metrics = NO_METRICS,
    *,
    link_settings: LinkSettings | None = None,
) -> App:
    """Wire the use cases over the seams the composition root chose.

    link_settings: where links point (the HTTP listener's public URL); None: no links.
    """
    external_ids = ExternalIds(store, clock)
    handles = Handles(store, envelope, registry, config.url_policy, external_ids, metrics)
    recorder = Recorder(audit_log)
    seams = Seams(store, registry, handles, recorder, clock, config.url_policy)
    mounts = Mounts(seams, config.default_mount_max_ttl_seconds, config.browser_origins)
    return App(
        vault=Vault(seams, envelope, service_keys, external_ids),
        mounts=mounts,
        signing=Signing(
            seams,
            mounts,
            config.default_ttl_seconds,
            PageTokens(*service_keys.page_token_keys()),
        ),
        audit=Audit(
            seams,
            AuditVerifier(store, service_keys.audit_signer(), service_keys.audit_keys(), clock),
            service_keys.audit_signer(),
        ),
        handles=handles,
        recorder=recorder,
        links=Links(
            seams,
            mounts,
            LinkCodec(*service_keys.link_keys()),
            Revocations(store, clock, timedelta(seconds=_refresh(config))),
            link_settings or LinkSettings(),
        ),
    )


def _refresh(config: Config) -> int:
    return config.http.revocation_refresh_seconds if config.http is not None else 10


__all__ = [
    "MAX_BATCH_KEYS",
    "App",
    "AuditFilter",
    "AuditKey",
    "AuditRow",
    "IssuedLink",
    "LinkInput",
    "LinkSettings",
    "LinksInput",
    "ListInput",
    "Location",
    "MountInput",
    "MountUpdate",
    "PolicyInput",
    "Prospect",
    "OpenInput",
    "Redirect",
    "RegisterInput",
    "RegistrationKey",
    "Signed",
    "SealedSecret",
    "SignInput",
    "TrustPolicy",
    "VerifyResult",
    "build_app",
]
