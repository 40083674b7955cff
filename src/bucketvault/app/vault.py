"""Vault use cases: registration key, trust policy, onboarding, credentials (register,
read, revoke).

Authorization comes before any lookup, so a denied caller learns nothing about what
exists. Credentials belong to the whole tenant: a principal granted only some mounts
may not see or change them (Reach.TENANT). The core holds no per-kind code: each kind's
spec (its provider's kinds.py) parses the unsealed secret, and its provider verifies it
with the cloud.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from bucketvault.app.common import Seams, limit_text, need, new_id, page_size, tenant_name
from bucketvault.app.handles import ExternalIds, credential_ad
from bucketvault.app.servicekeys import RegistrationKey, ServiceKeys
from bucketvault.audit.event import REPLAYED, AuditEvent
from bucketvault.audit.log import Change
from bucketvault.auth.authz import Ask, Reach, require
from bucketvault.crypto.envelope import Envelope
from bucketvault.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unimplemented,
)
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Onboarding,
    Principal,
    RegistrationContext,
    Role,
)
from bucketvault.providers.base import TrustPolicy
from bucketvault.providers.kinds import ParseContext, decode_secret
from bucketvault.store.base import StoredCredential, Writes


@dataclass(frozen=True)
class SealedSecret:
    """A credential sealed to one registration key (HPKE enc || ciphertext)."""

    key_id: str
    blob: bytes = field(repr=False)


@dataclass(frozen=True)
class RegisterInput:
    tenant: str
    display_name: str
    kind: CredentialKind | None
    sealed_secret: SealedSecret
    idempotency_key: str = ""


@dataclass(frozen=True)
class Vault:
    """Registration and the credential lifecycle."""

    seams: Seams
    envelope: Envelope
    service_keys: ServiceKeys
    external_ids: ExternalIds

    def _view(self, credential: Credential) -> Credential:
        if credential.state is not CredentialState.ACTIVE:
            return credential
        try:
            provider = self.seams.registry.provider(credential.kind)
        except Unimplemented:
            return credential
        dynamic = provider.warnings(credential)
        return dataclasses.replace(credential, warnings=(*credential.warnings, *dynamic))

    def registration_key(self, principal: Principal, suite: str) -> RegistrationKey:
        """Any authenticated caller may fetch the public registration key."""
        return self.service_keys.registration_key(suite)

    def trust_policy(self, principal: Principal, tenant: str, request_id: str) -> TrustPolicy:
        """The tenant's ExternalId and the role trust policy naming our principal."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        source = self.seams.registry.trust_policy_source()
        if source is None:
            raise FailedPrecondition(
                "no provider of this deployment issues trust policies",
                reason="PROVIDER_UNAVAILABLE",
            )
        policy = source.trust_policy(self.external_ids(tenant))
        self.seams.record(principal, tenant, "vault.trust_policy", tenant, request_id)
        return policy

    def onboarding(
        self, principal: Principal, tenant: str, kind: CredentialKind | None, request_id: str
    ) -> Onboarding:
        """What the tenant sets up on its side so that the service may use a keyless kind."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        if kind is None:
            raise InvalidArgument("kind is required", reason="MISSING_FIELD", field="kind")
        onboarding = self.seams.registry.onboarding(kind, tenant)
        if onboarding is None:
            raise FailedPrecondition(
                f"{kind.value} needs no onboarding: register its secret directly",
                reason="NO_ONBOARDING",
            )
        self.seams.record(principal, tenant, "vault.onboarding", kind.value, request_id)
        return onboarding

    def register(self, principal: Principal, req: RegisterInput, request_id: str) -> Credential:
        """Unseal, parse with the kind's spec, verify with the cloud, store encrypted."""
        tenant = tenant_name(req.tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        if req.kind is None:
            raise InvalidArgument("kind is required", reason="MISSING_FIELD", field="kind")
        limit_text(req.display_name, "display_name", 200)
        limit_text(req.idempotency_key, "idempotency_key", 128)
        if not req.sealed_secret.blob:
            raise InvalidArgument(
                "sealed_secret is required", reason="MISSING_FIELD", field="sealed_secret"
            )
        kind = req.kind
        provider = self.seams.registry.provider(kind)
        spec = provider.kinds[kind]
        sealed = req.sealed_secret
        plaintext = self.service_keys.unseal(sealed.key_id, tenant, kind.value, sealed.blob)
        document, canonical = decode_secret(plaintext)
        context = ParseContext(tenant, self.seams.url_policy, lambda: self.external_ids(tenant))
        secret = spec.read(document, context)
        admitted = spec.admit(secret, self.seams.clock.now())
        fingerprint = self.service_keys.fingerprint(kind.value, canonical)
        request_hash = hashlib.sha256(
            json.dumps([kind.value, req.display_name, fingerprint]).encode()
        ).hexdigest()
        if req.idempotency_key:
            existing = self.seams.store.find_by_idempotency_key(tenant, req.idempotency_key)
            if existing is not None:
                return self._replay(principal, existing, request_hash, request_id)
        credential_id = new_id("cred_")
        prep = provider.prepare(
            RegistrationContext(tenant, credential_id, kind, principal.name), secret
        )
        credential = Credential(
            credential_id=credential_id,
            tenant=tenant,
            display_name=req.display_name,
            kind=kind,
            state=CredentialState.ACTIVE,
            fingerprint=fingerprint,
            metadata={**secret.metadata(), **prep.metadata},
            warnings=(*admitted, *prep.warnings),
            created_at=self.seams.clock.now(),
            created_by=principal.name,
            record_version=1,
        )
        envelope = self.envelope.encrypt(canonical, credential_ad(credential))
        new = StoredCredential(credential, envelope, req.idempotency_key, request_hash)

        def insert(writes: Writes) -> StoredCredential:
            stored = writes.insert_credential(new)
            if stored.credential.credential_id != credential_id:
                # A concurrent retry with the same idempotency key won the insert.
                _same_request(stored, request_hash)
            return stored

        self.seams.record.note(credential_id=credential_id)
        stored = self.seams.record.mutate(
            Change(insert, lambda stored, event: _replayed(stored, event, credential_id)),
            principal,
            tenant,
            "vault.register",
            credential_id,
            request_id,
            kind=kind.value,
            fingerprint=fingerprint,
        )
        return self._view(stored.credential)

    def _replay(
        self, principal: Principal, existing: StoredCredential, request_hash: str, request_id: str
    ) -> Credential:
        cred = existing.credential
        self.seams.record.note(credential_id=cred.credential_id)
        _same_request(existing, request_hash)
        self.seams.record(
            principal,
            cred.tenant,
            "vault.register",
            cred.credential_id,
            request_id,
            outcome="replayed",
        )
        return self._view(cred)

    def get(
        self, principal: Principal, tenant: str, credential_id: str, request_id: str
    ) -> Credential:
        """A credential's non-secret record."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR, Role.AUDITOR), tenant, Reach.TENANT))
        cred = self.seams.handles.stored(tenant, need(credential_id, "credential_id")).credential
        self.seams.record(principal, tenant, "vault.get_credential", cred.credential_id, request_id)
        return self._view(cred)

    def list(
        self, principal: Principal, tenant: str, size: int, page_token: str, request_id: str
    ) -> tuple[list[Credential], str]:
        """A page of the tenant's credentials, by id."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR, Role.AUDITOR), tenant, Reach.TENANT))
        limit = page_size(size, 100)
        rows = self.seams.store.list_credentials(tenant, page_token, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        self.seams.record(principal, tenant, "vault.list_credentials", tenant, request_id)
        token = rows[-1].credential.credential_id if more and rows else ""
        return [self._view(r.credential) for r in rows], token

    def revoke(
        self, principal: Principal, tenant: str, credential_id: str, reason: str, request_id: str
    ) -> Credential:
        """Revoke and crypto-shred; mounts bound to it stop signing at once."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        limit_text(reason, "reason", 500)
        need(credential_id, "credential_id")
        now = self.seams.clock.now()

        def revoke(writes: Writes) -> StoredCredential:
            stored = writes.revoke_credential(tenant, credential_id, principal.name, reason, now)
            if stored is None:
                raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND")
            return stored

        stored = self.seams.record.mutate(
            Change(revoke), principal, tenant, "vault.revoke", credential_id, request_id
        )
        self.seams.handles.evict(credential_id)
        # After the commit: SQLite checkpoints its WAL so no copy of the envelope stays. If
        # that is busy the call fails SHRED_INCOMPLETE (a follow-up record says so) and a
        # retried revoke, which finds the credential revoked, purges again.
        self.seams.store.purge_revoked()
        return stored.credential


def _same_request(existing: StoredCredential, request_hash: str) -> None:
    """A reused idempotency key must come with the same registration."""
    if existing.request_hash != request_hash:
        raise AlreadyExists(
            "idempotency_key was already used for a different registration",
            reason="IDEMPOTENCY_KEY_REUSED",
            field="idempotency_key",
        )


def _replayed(stored: StoredCredential, event: AuditEvent, credential_id: str) -> AuditEvent:
    """The record of a registration whose insert found a retry's row in its place."""
    winner = stored.credential.credential_id
    if winner == credential_id:
        return event
    return dataclasses.replace(
        event, outcome=REPLAYED, resource=winner, credential_id=winner, detail_json="{}"
    )


__all__ = ["RegisterInput", "SealedSecret", "Vault"]
