"""The use cases, transport-agnostic: authorize -> load -> decrypt -> provider -> audit.

Every public method takes the calling Principal first. Authorization happens before
any lookup, so a denied caller learns nothing about what exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bucketvault.audit import AuditEvent, AuditLog, verify_chain
from bucketvault.audit.verify import VerifyResult
from bucketvault.auth.authz import authorize, authorize_any
from bucketvault.clock import Clock
from bucketvault.config import MAX_URL_TTL_SECONDS, Config
from bucketvault.credentials import Validator
from bucketvault.crypto import hpke
from bucketvault.crypto.envelope import Envelope, associated_data
from bucketvault.crypto.servicekeys import ServiceKeys
from bucketvault.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unimplemented,
)
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    CredentialState,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountPolicy,
    Principal,
    RegistrationContext,
    Role,
    SecretDocument,
    SignedUrl,
    SignOptions,
)
from bucketvault.objectkeys import check_key, check_mount_prefix, check_prefix
from bucketvault.providers.base import CloudProvider, CredentialHandle
from bucketvault.store.base import AuditFilter, AuditRow, ServiceKeyRecord, Store, StoredCredential

log = logging.getLogger(__name__)

MAX_BATCH_KEYS = 1000
MAX_PAGE_SIZE = 1000
_TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REGION = re.compile(r"^[a-z0-9-]{0,32}$")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_FAMILY = {
    CredentialKind.AWS_ROLE: "aws",
    CredentialKind.S3_ACCESS_KEY: "aws",
    CredentialKind.GCS_SERVICE_ACCOUNT: "gcs",
    CredentialKind.GCS_HMAC: "gcs",
    CredentialKind.AZURE_SAS: "azure",
    CredentialKind.AZURE_SHARED_KEY: "azure",
    CredentialKind.AZURE_SERVICE_PRINCIPAL: "azure",
}


@runtime_checkable
class TrustPrincipalSource(Protocol):
    """Implemented by the AWS provider: the ARN customers' trust policies must name."""

    def service_principal_arn(self) -> str: ...


@dataclass(frozen=True)
class RegisterInput:
    tenant: str
    display_name: str
    kind: CredentialKind | None
    key_id: str
    sealed: bytes = field(repr=False)
    idempotency_key: str = ""


@dataclass(frozen=True)
class MountInput:
    tenant: str
    name: str
    bucket: str
    prefix: str
    region: str
    endpoint: str
    credential_id: str
    max_ttl_seconds: int
    allowed_methods: frozenset[Method]


@dataclass(frozen=True)
class SignInput:
    tenant: str
    mount_id: str
    keys: tuple[str, ...]
    method: Method | None
    ttl_seconds: int
    response_content_type: str = ""
    response_content_disposition: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class ListInput:
    tenant: str
    mount_id: str
    prefix: str
    delimiter: str
    page_size: int
    page_token: str
    sign_ttl_seconds: int


@dataclass(frozen=True)
class TrustPolicy:
    external_id: str
    service_principal_arn: str
    policy_json: str


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)


def _need(value: str, name: str, pattern: re.Pattern[str] | None = None) -> str:
    if not value:
        raise InvalidArgument(f"{name} is required", reason="MISSING_FIELD", field=name)
    if pattern is not None and not pattern.match(value):
        raise InvalidArgument(f"{name} is malformed", reason="INVALID_FIELD", field=name)
    return value


def _credential_ad(c: Credential) -> bytes:
    return associated_data("credential", c.tenant, c.credential_id, c.kind.value, c.record_version)


class App:
    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        envelope: Envelope,
        service_keys: ServiceKeys,
        providers: Mapping[CredentialKind, CloudProvider],
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._config = config
        self._store = store
        self._envelope = envelope
        self._keys = service_keys
        self._providers = dict(providers)
        self._audit = audit
        self._clock = clock
        self._validator = Validator(config.url_policy, clock.now)
        self._handles: dict[tuple[str, int], CredentialHandle] = {}
        self._handles_lock = threading.Lock()

    # -- helpers -------------------------------------------------------------
    def _record(
        self,
        principal: Principal,
        tenant: str,
        action: str,
        resource: str,
        request_id: str,
        outcome: str = "ok",
        **detail: str,
    ) -> None:
        self._audit.record(
            AuditEvent(principal.name, tenant, action, resource, outcome, request_id, detail)
        )

    def _tenant(self, tenant: str) -> str:
        return _need(tenant, "tenant", _TENANT)

    def _credential(self, tenant: str, credential_id: str) -> StoredCredential:
        stored = self._store.get_credential(tenant, _need(credential_id, "credential_id"))
        if stored is None:
            raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND")
        return stored

    def _mount(self, tenant: str, mount_id: str) -> Mount:
        mount = self._store.get_mount(tenant, _need(mount_id, "mount_id"))
        if mount is None:
            raise NotFound("no such mount", reason="MOUNT_NOT_FOUND")
        return mount

    def _view(self, credential: Credential) -> Credential:
        provider = self._providers.get(credential.kind)
        if provider is None or credential.state is not CredentialState.ACTIVE:
            return credential
        dynamic = provider.warnings(credential)
        return dataclasses.replace(credential, warnings=(*credential.warnings, *dynamic))

    def _handle(self, mount: Mount) -> tuple[Credential, CredentialHandle]:
        stored = self._credential(mount.tenant, mount.credential_id)
        cred = stored.credential
        key = (cred.credential_id, cred.record_version)
        if cred.state is CredentialState.REVOKED or stored.envelope is None:
            self._evict(cred.credential_id)
            raise FailedPrecondition(
                "the mount's credential has been revoked; rebind the mount",
                reason="CREDENTIAL_REVOKED",
            )
        provider = self._providers.get(cred.kind)
        if provider is None:
            raise Unimplemented(
                f"signing with {cred.kind.value} credentials is not available yet",
                reason="PROVIDER_UNAVAILABLE",
            )
        with self._handles_lock:
            handle = self._handles.get(key)
            if handle is None:
                plaintext = self._envelope.decrypt(stored.envelope, _credential_ad(cred))
                document = SecretDocument(cred.kind, json.loads(plaintext))
                handle = provider.open(cred, document)
                self._handles[key] = handle
        return cred, handle

    def _evict(self, credential_id: str) -> None:
        with self._handles_lock:
            gone = [k for k in self._handles if k[0] == credential_id]
            handles = [self._handles.pop(k) for k in gone]
        for handle in handles:
            handle.close()

    # -- Vault -------------------------------------------------------------------
    def registration_key(self, principal: Principal, suite: hpke.Suite) -> ServiceKeyRecord:
        """Any authenticated caller may fetch the public registration key."""
        return self._keys.registration_key(suite)

    def aws_trust_policy(self, principal: Principal, tenant: str, request_id: str) -> TrustPolicy:
        tenant = self._tenant(tenant)
        authorize(principal, Role.OPERATOR, tenant)
        arn = self._config.aws_service_principal_arn
        if not arn:
            provider = self._providers.get(CredentialKind.AWS_ROLE)
            if isinstance(provider, TrustPrincipalSource):
                arn = provider.service_principal_arn()
        if not arn:
            raise FailedPrecondition(
                "the service's AWS principal is not configured "
                "(set BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN)",
                reason="AWS_NOT_CONFIGURED",
            )
        external_id = self._external_id(tenant)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": arn},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ],
        }
        self._record(principal, tenant, "vault.trust_policy", tenant, request_id)
        return TrustPolicy(external_id, arn, json.dumps(policy, indent=2))

    def _external_id(self, tenant: str) -> str:
        # Random and unguessable, fixed forever per tenant: the confused-deputy defence.
        return self._store.ensure_external_id(
            tenant, "bv-" + secrets.token_hex(20), self._clock.now()
        )

    def register_credential(
        self, principal: Principal, req: RegisterInput, request_id: str
    ) -> Credential:
        tenant = self._tenant(req.tenant)
        authorize(principal, Role.OPERATOR, tenant)
        if req.kind is None:
            raise InvalidArgument("kind is required", reason="MISSING_FIELD", field="kind")
        if len(req.display_name) > 200:
            raise InvalidArgument(
                "display_name is too long", reason="INVALID_FIELD", field="display_name"
            )
        if len(req.idempotency_key) > 128:
            raise InvalidArgument(
                "idempotency_key is too long", reason="INVALID_FIELD", field="idempotency_key"
            )
        if not req.sealed:
            raise InvalidArgument(
                "sealed_secret is required", reason="MISSING_FIELD", field="sealed_secret"
            )
        kind = req.kind
        plaintext = self._keys.unseal(req.key_id, tenant, kind.value, req.sealed)
        external_id = self._external_id(tenant) if kind is CredentialKind.AWS_ROLE else ""
        validated = self._validator.validate(kind, plaintext, external_id)
        fingerprint = self._keys.fingerprint(kind.value, validated.canonical)
        request_hash = hashlib.sha256(
            json.dumps([kind.value, req.display_name, fingerprint]).encode()
        ).hexdigest()
        if req.idempotency_key:
            existing = self._store.find_by_idempotency_key(tenant, req.idempotency_key)
            if existing is not None:
                return self._replay(principal, existing, request_hash, request_id)
        credential_id = _new_id("cred_")
        provider = self._providers.get(kind)
        metadata: dict[str, str] = dict(validated.metadata)
        warnings: tuple[str, ...] = ()
        if provider is not None:
            prep = provider.prepare(
                RegistrationContext(tenant, credential_id, kind, external_id), validated.document
            )
            metadata.update(prep.metadata)
            warnings = tuple(prep.warnings)
        credential = Credential(
            credential_id=credential_id,
            tenant=tenant,
            display_name=req.display_name,
            kind=kind,
            state=CredentialState.ACTIVE,
            fingerprint=fingerprint,
            metadata=metadata,
            warnings=warnings,
            created_at=self._clock.now(),
            created_by=principal.name,
            record_version=1,
        )
        envelope = self._envelope.encrypt(validated.canonical, _credential_ad(credential))
        stored = self._store.insert_credential(
            StoredCredential(credential, envelope, req.idempotency_key, request_hash)
        )
        if stored.credential.credential_id != credential_id:
            # A concurrent retry with the same idempotency key won the insert.
            return self._replay(principal, stored, request_hash, request_id)
        self._record(
            principal,
            tenant,
            "vault.register",
            credential_id,
            request_id,
            kind=kind.value,
            fingerprint=fingerprint,
        )
        return self._view(credential)

    def _replay(
        self, principal: Principal, existing: StoredCredential, request_hash: str, request_id: str
    ) -> Credential:
        cred = existing.credential
        if existing.request_hash != request_hash:
            raise AlreadyExists(
                "idempotency_key was already used for a different registration",
                reason="IDEMPOTENCY_KEY_REUSED",
                field="idempotency_key",
            )
        self._record(
            principal,
            cred.tenant,
            "vault.register",
            cred.credential_id,
            request_id,
            outcome="replayed",
        )
        return self._view(cred)

    def get_credential(
        self, principal: Principal, tenant: str, credential_id: str, request_id: str
    ) -> Credential:
        tenant = self._tenant(tenant)
        authorize_any(principal, (Role.OPERATOR, Role.AUDITOR), tenant)
        cred = self._credential(tenant, credential_id).credential
        self._record(principal, tenant, "vault.get_credential", cred.credential_id, request_id)
        return self._view(cred)

    def list_credentials(
        self, principal: Principal, tenant: str, page_size: int, page_token: str, request_id: str
    ) -> tuple[list[Credential], str]:
        tenant = self._tenant(tenant)
        authorize_any(principal, (Role.OPERATOR, Role.AUDITOR), tenant)
        limit = _page_size(page_size, 100)
        rows = self._store.list_credentials(tenant, page_token, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        self._record(principal, tenant, "vault.list_credentials", tenant, request_id)
        token = rows[-1].credential.credential_id if more and rows else ""
        return [self._view(r.credential) for r in rows], token

    def revoke_credential(
        self, principal: Principal, tenant: str, credential_id: str, reason: str, request_id: str
    ) -> Credential:
        tenant = self._tenant(tenant)
        authorize(principal, Role.OPERATOR, tenant)
        if len(reason) > 500:
            raise InvalidArgument("reason is too long", reason="INVALID_FIELD", field="reason")
        stored = self._store.revoke_credential(
            tenant, _need(credential_id, "credential_id"), principal.name, reason, self._clock.now()
        )
        if stored is None:
            raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND")
        self._evict(credential_id)
        self._record(principal, tenant, "vault.revoke", credential_id, request_id)
        return stored.credential

    def _active_credential(self, tenant: str, credential_id: str, field_name: str) -> Credential:
        stored = self._store.get_credential(tenant, _need(credential_id, field_name))
        if stored is None:
            raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND", field=field_name)
        if stored.credential.state is not CredentialState.ACTIVE:
            raise FailedPrecondition(
                "the credential has been revoked", reason="CREDENTIAL_REVOKED", field=field_name
            )
        return stored.credential

    def create_mount(self, principal: Principal, req: MountInput, request_id: str) -> Mount:
        tenant = self._tenant(req.tenant)
        authorize(principal, Role.OPERATOR, tenant)
        _need(req.name, "name", _NAME)
        _need(req.bucket, "bucket", _BUCKET)
        prefix = check_mount_prefix(req.prefix)
        if not _REGION.match(req.region):
            raise InvalidArgument("region is malformed", reason="INVALID_FIELD", field="region")
        endpoint = (
            self._config.url_policy.check_endpoint(req.endpoint, field="endpoint")
            if req.endpoint
            else ""
        )
        max_ttl = req.max_ttl_seconds or self._config.default_mount_max_ttl_seconds
        if not 1 <= max_ttl <= MAX_URL_TTL_SECONDS:
            raise InvalidArgument(
                f"policy.max_ttl_seconds must be at most {MAX_URL_TTL_SECONDS}",
                reason="TTL_TOO_LONG",
                field="policy.max_ttl_seconds",
            )
        self._active_credential(tenant, req.credential_id, "credential_id")
        now = self._clock.now()
        mount = Mount(
            mount_id=_new_id("mnt_"),
            tenant=tenant,
            name=req.name,
            bucket=req.bucket,
            prefix=prefix,
            region=req.region,
            endpoint=endpoint,
            credential_id=req.credential_id,
            policy=MountPolicy(
                max_ttl, req.allowed_methods or frozenset({Method.GET, Method.HEAD})
            ),
            version=1,
            created_at=now,
            updated_at=now,
        )
        self._store.insert_mount(mount)
        self._record(principal, tenant, "vault.create_mount", mount.mount_id, request_id)
        return mount

    def get_mount(self, principal: Principal, tenant: str, mount_id: str, request_id: str) -> Mount:
        tenant = self._tenant(tenant)
        authorize_any(principal, (Role.OPERATOR, Role.AUDITOR, Role.SIGNER), tenant)
        mount = self._mount(tenant, mount_id)
        self._record(principal, tenant, "vault.get_mount", mount.mount_id, request_id)
        return mount

    def list_mounts(
        self, principal: Principal, tenant: str, page_size: int, page_token: str, request_id: str
    ) -> tuple[list[Mount], str]:
        tenant = self._tenant(tenant)
        authorize_any(principal, (Role.OPERATOR, Role.AUDITOR, Role.SIGNER), tenant)
        limit = _page_size(page_size, 100)
        rows = self._store.list_mounts(tenant, page_token, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        self._record(principal, tenant, "vault.list_mounts", tenant, request_id)
        return rows, (rows[-1].mount_id if more and rows else "")

    def rebind_mount(
        self,
        principal: Principal,
        tenant: str,
        mount_id: str,
        credential_id: str,
        expected_version: int,
        request_id: str,
    ) -> Mount:
        tenant = self._tenant(tenant)
        authorize(principal, Role.OPERATOR, tenant)
        mount = self._mount(tenant, mount_id)
        if expected_version <= 0:
            raise InvalidArgument(
                "expected_version is required (read the mount first)",
                reason="MISSING_FIELD",
                field="expected_version",
            )
        new = self._active_credential(tenant, credential_id, "credential_id")
        old = self._store.get_credential(tenant, mount.credential_id)
        if old is not None and _FAMILY[old.credential.kind] != _FAMILY[new.kind]:
            raise FailedPrecondition(
                f"a {_FAMILY[old.credential.kind]} mount cannot use a {new.kind.value} credential",
                reason="KIND_MISMATCH",
                field="credential_id",
            )
        rebound = self._store.rebind_mount(
            tenant, mount.mount_id, new.credential_id, expected_version, self._clock.now()
        )
        self._record(
            principal,
            tenant,
            "vault.rebind_mount",
            mount.mount_id,
            request_id,
            credential_id=new.credential_id,
            previous_credential_id=mount.credential_id,
        )
        return rebound

    def check_mount(
        self, principal: Principal, tenant: str, mount_id: str, request_id: str
    ) -> CheckResult:
        tenant = self._tenant(tenant)
        authorize(principal, Role.OPERATOR, tenant)
        mount = self._mount(tenant, mount_id)
        _, handle = self._handle(mount)
        result = handle.check(mount)
        self._record(
            principal,
            tenant,
            "vault.check_mount",
            mount.mount_id,
            request_id,
            state=result.state.value,
            reason=result.reason,
        )
        return result

    # -- Signer ------------------------------------------------------------------
    def _sign_options(
        self, mount: Mount, method: Method | None, ttl: int, **extra: str
    ) -> SignOptions:
        if method is None:
            raise InvalidArgument("method is required", reason="MISSING_FIELD", field="method")
        if method not in mount.policy.allowed_methods:
            raise PermissionDenied(
                f"the mount does not allow {method.value}",
                reason="METHOD_NOT_ALLOWED",
                field="method",
            )
        if ttl < 0:
            raise InvalidArgument(
                "ttl_seconds must be positive", reason="INVALID_FIELD", field="ttl_seconds"
            )
        if ttl > mount.policy.max_ttl_seconds:
            raise InvalidArgument(
                f"ttl_seconds exceeds the mount's maximum of {mount.policy.max_ttl_seconds}",
                reason="TTL_TOO_LONG",
                field="ttl_seconds",
            )
        capped_by = ""
        if ttl == 0:
            ttl = self._config.default_ttl_seconds
            if ttl > mount.policy.max_ttl_seconds:
                ttl, capped_by = mount.policy.max_ttl_seconds, "MOUNT_MAX_TTL"
        if method is not Method.PUT and extra.get("content_type"):
            raise InvalidArgument(
                "content_type applies to PUT only", reason="INVALID_FIELD", field="content_type"
            )
        if method is Method.PUT and (
            extra.get("response_content_type") or extra.get("response_content_disposition")
        ):
            raise InvalidArgument(
                "response overrides apply to GET and HEAD only",
                reason="INVALID_FIELD",
                field="response_content_type",
            )
        for name, value in extra.items():
            if len(value) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise InvalidArgument(f"{name} is malformed", reason="INVALID_FIELD", field=name)
        return SignOptions(method=method, expires_in=ttl, capped_by=capped_by, **extra)

    def sign(self, principal: Principal, req: SignInput, request_id: str) -> list[SignedUrl]:
        """SignURL and SignURLs: one audit record per call, however many keys."""
        tenant = self._tenant(req.tenant)
        authorize(principal, Role.SIGNER, tenant)
        if not req.keys:
            raise InvalidArgument(
                "at least one key is required", reason="MISSING_FIELD", field="keys"
            )
        if len(req.keys) > MAX_BATCH_KEYS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_KEYS} keys per call", reason="BATCH_TOO_LARGE", field="keys"
            )
        mount = self._mount(tenant, req.mount_id)
        options = self._sign_options(
            mount,
            req.method,
            req.ttl_seconds,
            response_content_type=req.response_content_type,
            response_content_disposition=req.response_content_disposition,
            content_type=req.content_type,
        )
        single = len(req.keys) == 1
        for i, key in enumerate(req.keys):
            check_key(key, mount.prefix, field="key" if single else f"keys[{i}]")
        _, handle = self._handle(mount)
        urls = handle.sign(mount, req.keys, options)
        digest = hashlib.sha256("\n".join(req.keys).encode("utf-8", "surrogatepass")).hexdigest()
        self._record(
            principal,
            tenant,
            "signer.sign",
            mount.mount_id,
            request_id,
            method=options.method.value,
            count=str(len(req.keys)),
            key=req.keys[0] if single else "",
            keys_sha256=digest,
            expires_in=str(options.expires_in),
        )
        return urls

    def list_prefix(
        self, principal: Principal, req: ListInput, request_id: str
    ) -> Iterator[ListPage]:
        """Validate and audit before the first page; pages stream lazily."""
        tenant = self._tenant(req.tenant)
        authorize(principal, Role.SIGNER, tenant)
        mount = self._mount(tenant, req.mount_id)
        prefix = check_prefix(req.prefix, mount.prefix)
        if len(req.delimiter) > 16:
            raise InvalidArgument(
                "delimiter is too long", reason="INVALID_FIELD", field="delimiter"
            )
        if not 0 <= req.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be at most {MAX_PAGE_SIZE}",
                reason="INVALID_FIELD",
                field="page_size",
            )
        sign = (
            self._sign_options(mount, Method.GET, req.sign_ttl_seconds)
            if req.sign_ttl_seconds > 0
            else None
        )
        _, handle = self._handle(mount)
        self._record(
            principal,
            tenant,
            "signer.list",
            mount.mount_id,
            request_id,
            prefix=prefix,
            signed=str(sign is not None),
        )
        request = ListRequest(prefix, req.delimiter, req.page_size or MAX_PAGE_SIZE, req.page_token)
        return handle.list(mount, request, sign)

    # -- Audit ---------------------------------------------------------------------
    def query_audit(
        self, principal: Principal, audit_filter: AuditFilter, request_id: str
    ) -> Iterator[AuditRow]:
        if audit_filter.tenant:
            authorize(principal, Role.AUDITOR, self._tenant(audit_filter.tenant))
        else:
            # Unfiltered reads span tenants: only an all-tenant auditor may make them.
            authorize(principal, Role.AUDITOR, "*")
        self._record(principal, audit_filter.tenant, "audit.query", audit_filter.tenant, request_id)
        return self._store.query_audit(audit_filter)

    def verify_audit(self, principal: Principal, request_id: str) -> VerifyResult:
        authorize(principal, Role.AUDITOR, "*")
        result = verify_chain(self._store.iter_audit_chain())
        self._record(principal, "", "audit.verify", "", request_id, ok=str(result.ok))
        return result

    def close(self) -> None:
        with self._handles_lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.close()


def _page_size(requested: int, default: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE_SIZE}",
            reason="INVALID_FIELD",
            field="page_size",
        )
    return requested or default


__all__ = [
    "App",
    "ListInput",
    "MountInput",
    "RegisterInput",
    "SignInput",
    "TrustPolicy",
]
