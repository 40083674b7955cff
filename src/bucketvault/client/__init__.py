"""The Python SDK other services import.

It seals credentials locally (the plaintext never leaves the caller's process) and
maps gRPC status codes back to bucketvault.errors, with ErrorInfo's reason attached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc

from bucketvault import errors
from bucketvault.crypto import hpke
from bucketvault.grpc.status import error_info
from bucketvault.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

T = TypeVar("T")
# The listing replies: a page of items and the token of the next page.
Page = TypeVar("Page", vault_pb2.ListCredentialsResponse, vault_pb2.ListMountsResponse)

# The service's answers to a blob sealed to a registration key it no longer takes.
_STALE_KEY_REASONS = frozenset({"UNKNOWN_REGISTRATION_KEY", "REGISTRATION_KEY_RETIRED"})
_BY_CODE: dict[grpc.StatusCode, type[errors.BucketVaultError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.UNIMPLEMENTED: errors.Unimplemented,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}


def translate(exc: grpc.RpcError) -> errors.BucketVaultError:
    """The bucketvault error for a failed call (INTERNAL for anything unmapped)."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    reason, field, metadata = error_info(exc) if isinstance(exc, grpc.Call) else ("", "", {})
    cls = _BY_CODE.get(code, errors.Internal)
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    error = cls(details or code.name, reason=reason or None, metadata=metadata, field=field or None)
    error.code = code
    return error


def _kind(kind: str | int) -> Any:
    return common_pb2.CredentialKind.Value(kind) if isinstance(kind, str) else kind


def _method(method: str | int) -> Any:
    return common_pb2.Method.Value(method.upper()) if isinstance(method, str) else method


def tls_credentials(
    *,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
) -> grpc.ChannelCredentials | None:
    """Channel credentials from PEM files, or None when no file is given (plaintext).

    ca: the CA bundle that signed the server's certificate (default: the system's roots).
    cert and key: this client's certificate and key, for servers that require mTLS.
    """
    if ca is None and cert is None and key is None:
        return None
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca is not None else None,
        private_key=Path(key).read_bytes() if key is not None else None,
        certificate_chain=Path(cert).read_bytes() if cert is not None else None,
    )


class BucketVaultClient:
    """A typed client for the Vault, Signer and Audit services.

    TLS: pass tls_ca (and tls_cert, tls_key for mTLS), or ready channel credentials. The
    token may be empty when the server names this caller by its client certificate.
    """

    def __init__(
        self,
        target: str | grpc.Channel,
        token: str = "",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 30.0,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        from_files = tls_credentials(ca=tls_ca, cert=tls_cert, key=tls_key)
        if from_files is not None:
            if credentials is not None:
                raise ValueError("pass credentials or tls_* files, not both")
            credentials = from_files
        if isinstance(target, str):
            self._channel = (
                grpc.secure_channel(target, credentials)
                if credentials
                else grpc.insecure_channel(target)
            )
            self._owns_channel = True
        else:
            self._channel, self._owns_channel = target, False
        # No header without a token: an empty "Bearer " would be refused as malformed
        # instead of letting the client certificate speak.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self.vault = vault_pb2_grpc.VaultStub(self._channel)
        self.signer = signer_pb2_grpc.SignerStub(self._channel)
        self.audit = audit_pb2_grpc.AuditStub(self._channel)
        self._reg_keys: dict[int, vault_pb2.RegistrationKey] = {}

    def __repr__(self) -> str:
        return "BucketVaultClient()"

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> BucketVaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, rpc: Any, request: Any, returns: type[T]) -> T:
        try:
            return cast(T, rpc(request, metadata=self._metadata, timeout=self._timeout))
        except grpc.RpcError as exc:
            raise translate(exc) from None

    def _stream(self, rpc: Any, request: Any) -> Iterator[Any]:
        try:
            yield from rpc(request, metadata=self._metadata, timeout=None)
        except grpc.RpcError as exc:
            raise translate(exc) from None

    def _pages(self, rpc: Any, request: Any, returns: type[Page]) -> Iterator[Page]:
        """Every page of a listing: request again with the next token while there is one."""
        while True:
            page = self._call(rpc, request, returns)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # -- Vault ------------------------------------------------------------------
    def registration_key(
        self, suite: Any = vault_pb2.X25519_SHA256_AES256GCM
    ) -> vault_pb2.RegistrationKey:
        if suite not in self._reg_keys:
            self._reg_keys[suite] = self._call(
                self.vault.GetRegistrationKey,
                vault_pb2.GetRegistrationKeyRequest(suite=suite),
                vault_pb2.RegistrationKey,
            )
        return self._reg_keys[suite]

    def seal(
        self,
        tenant: str,
        kind: str,
        secret: Mapping[str, Any] | bytes,
        *,
        suite: Any = vault_pb2.X25519_SHA256_AES256GCM,
    ) -> vault_pb2.SealedSecret:
        """Seal a credential for this service, tenant and kind (HPKE, locally)."""
        key = self.registration_key(suite)
        plaintext = secret if isinstance(secret, bytes) else json.dumps(dict(secret)).encode()
        sealed = hpke.seal(
            hpke.Suite(vault_pb2.HpkeSuite.Name(key.suite)), key.public_key, tenant, kind, plaintext
        )
        return vault_pb2.SealedSecret(key_id=key.key_id, sealed=sealed)

    def register_credential(
        self,
        tenant: str,
        kind: str,
        secret: Mapping[str, Any] | bytes,
        *,
        display_name: str = "",
        idempotency_key: str = "",
        suite: Any = vault_pb2.X25519_SHA256_AES256GCM,
    ) -> vault_pb2.Credential:
        """Seal secret locally and register it; the plaintext is never sent.

        If the service rotated its registration key since this client fetched it, the
        cached key is dropped and the secret sealed again to the current one, once.
        """
        for attempt in (1, 2):
            try:
                return self.register_sealed(
                    tenant,
                    kind,
                    self.seal(tenant, kind, secret, suite=suite),
                    display_name=display_name,
                    idempotency_key=idempotency_key,
                )
            except errors.FailedPrecondition as exc:
                if attempt == 2 or exc.reason not in _STALE_KEY_REASONS:
                    raise
                self._reg_keys.pop(suite, None)
        raise AssertionError("unreachable")

    def register_sealed(
        self,
        tenant: str,
        kind: str | int,
        sealed: vault_pb2.SealedSecret,
        *,
        display_name: str = "",
        idempotency_key: str = "",
    ) -> vault_pb2.Credential:
        request = vault_pb2.RegisterCredentialRequest(
            tenant=tenant,
            display_name=display_name,
            kind=_kind(kind),
            sealed_secret=sealed,
            idempotency_key=idempotency_key,
        )
        return self._call(self.vault.RegisterCredential, request, vault_pb2.Credential)

    def get_credential(self, tenant: str, credential_id: str) -> vault_pb2.Credential:
        request = vault_pb2.GetCredentialRequest(tenant=tenant, credential_id=credential_id)
        return self._call(self.vault.GetCredential, request, vault_pb2.Credential)

    def list_credentials(
        self, tenant: str, *, page_size: int = 0
    ) -> Iterator[vault_pb2.Credential]:
        """Every credential of the tenant, following page tokens."""
        request = vault_pb2.ListCredentialsRequest(tenant=tenant, page_size=page_size)
        for page in self._pages(
            self.vault.ListCredentials, request, vault_pb2.ListCredentialsResponse
        ):
            yield from page.credentials

    def revoke_credential(
        self, tenant: str, credential_id: str, reason: str = ""
    ) -> vault_pb2.Credential:
        request = vault_pb2.RevokeCredentialRequest(
            tenant=tenant, credential_id=credential_id, reason=reason
        )
        return self._call(self.vault.RevokeCredential, request, vault_pb2.Credential)

    def trust_policy(self, tenant: str) -> vault_pb2.AwsTrustPolicy:
        request = vault_pb2.GetAwsTrustPolicyRequest(tenant=tenant)
        return self._call(self.vault.GetAwsTrustPolicy, request, vault_pb2.AwsTrustPolicy)

    def onboarding(self, tenant: str, kind: str | int) -> vault_pb2.Onboarding:
        """How the tenant grants the service's own identity access for a keyless kind."""
        request = vault_pb2.GetOnboardingRequest(tenant=tenant, kind=_kind(kind))
        return self._call(self.vault.GetOnboarding, request, vault_pb2.Onboarding)

    def create_mount(
        self,
        tenant: str,
        *,
        name: str,
        bucket: str,
        credential_id: str,
        prefix: str = "",
        region: str = "",
        endpoint: str = "",
        max_ttl_seconds: int = 0,
        allowed_methods: Iterable[str] = (),
        allow_credential_lifetime: bool = False,
        cache_stable_urls: bool = True,
    ) -> vault_pb2.Mount:
        request = vault_pb2.CreateMountRequest(
            tenant=tenant,
            name=name,
            bucket=bucket,
            prefix=prefix,
            region=region,
            endpoint=endpoint,
            credential_id=credential_id,
            policy=vault_pb2.MountPolicy(
                max_ttl_seconds=max_ttl_seconds,
                allowed_methods=[_method(m) for m in allowed_methods],
                allow_credential_lifetime=allow_credential_lifetime,
                disable_stable_urls=not cache_stable_urls,
            ),
        )
        return self._call(self.vault.CreateMount, request, vault_pb2.Mount)

    def get_mount(self, tenant: str, mount_id: str) -> vault_pb2.Mount:
        request = vault_pb2.GetMountRequest(tenant=tenant, mount_id=mount_id)
        return self._call(self.vault.GetMount, request, vault_pb2.Mount)

    def list_mounts(self, tenant: str, *, page_size: int = 0) -> Iterator[vault_pb2.Mount]:
        request = vault_pb2.ListMountsRequest(tenant=tenant, page_size=page_size)
        for page in self._pages(self.vault.ListMounts, request, vault_pb2.ListMountsResponse):
            yield from page.mounts

    def rebind_mount(
        self, tenant: str, mount_id: str, credential_id: str, expected_version: int
    ) -> vault_pb2.Mount:
        request = vault_pb2.RebindMountRequest(
            tenant=tenant,
            mount_id=mount_id,
            credential_id=credential_id,
            expected_version=expected_version,
        )
        return self._call(self.vault.RebindMount, request, vault_pb2.Mount)

    def check_mount(self, tenant: str, mount_id: str) -> vault_pb2.CheckMountResponse:
        request = vault_pb2.CheckMountRequest(tenant=tenant, mount_id=mount_id)
        return self._call(self.vault.CheckMount, request, vault_pb2.CheckMountResponse)

    # -- Signer -----------------------------------------------------------------
    def sign_url(
        self,
        tenant: str,
        mount_id: str = "",
        key: str = "",
        *,
        method: str = "GET",
        ttl_seconds: int = 0,
        response_content_type: str = "",
        response_content_disposition: str = "",
        content_type: str = "",
        uri: str = "",
    ) -> signer_pb2.SignedURL:
        """uri (s3://, gs://, az://, https object URL) instead of mount_id and key: the
        reply's mount_id says which mount it resolved to."""
        request = signer_pb2.SignURLRequest(
            tenant=tenant,
            uri=uri,
            mount_id=mount_id,
            key=key,
            method=_method(method),
            ttl_seconds=ttl_seconds,
            response_content_type=response_content_type,
            response_content_disposition=response_content_disposition,
            content_type=content_type,
        )
        return self._call(self.signer.SignURL, request, signer_pb2.SignedURL)

    def sign_urls(
        self,
        tenant: str,
        mount_id: str,
        keys: Sequence[str],
        *,
        method: str = "GET",
        ttl_seconds: int = 0,
        compact: bool = True,
        uris: Sequence[str] = (),
    ) -> list[signer_pb2.SignedURL]:
        """One SignedURL per key, in order. compact: ask for the packed reply (shared
        fields once); unpacked here, so the result is the same either way. uris (with
        mount_id "" and keys ()): object URIs of one mount; the full reply is asked for,
        as only it names each URI's key."""
        keys = list(keys)
        request = signer_pb2.SignURLsRequest(
            tenant=tenant,
            mount_id=mount_id,
            keys=keys,
            uris=list(uris),
            method=_method(method),
            ttl_seconds=ttl_seconds,
            compact=compact and not uris,
        )
        response = self._call(self.signer.SignURLs, request, signer_pb2.SignURLsResponse)
        if not response.compact_urls:
            return list(response.urls)  # a server without the compact form
        method_pb, expires_at = response.method, response.expires_at
        capped_by = response.expiry_capped_by
        headers = dict(response.required_headers)
        out = []
        for key, url in zip(keys, response.compact_urls, strict=True):
            signed = signer_pb2.SignedURL(
                url=url,
                key=key,
                method=method_pb,
                expires_at=expires_at,
                expiry_capped_by=capped_by,
            )
            if headers:
                signed.required_headers.update(headers)
            out.append(signed)
        return out

    def list_prefix(
        self,
        tenant: str,
        mount_id: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        page_size: int = 0,
        page_token: str = "",
        sign_ttl_seconds: int = 0,
    ) -> Iterator[signer_pb2.ListPrefixPage]:
        return self._stream(
            self.signer.ListPrefix,
            signer_pb2.ListPrefixRequest(
                tenant=tenant,
                mount_id=mount_id,
                prefix=prefix,
                delimiter=delimiter,
                page_size=page_size,
                page_token=page_token,
                sign_ttl_seconds=sign_ttl_seconds,
            ),
        )

    def create_link(
        self,
        tenant: str,
        mount_id: str,
        key: str = "",
        *,
        prefix: str = "",
        whole_prefix: bool = False,
        methods: Sequence[str] = (),
        expires_in_seconds: int = 0,
    ) -> signer_pb2.Link:
        """A stable link to key, or (whole_prefix) a base for every key under prefix."""
        request = signer_pb2.CreateLinkRequest(
            tenant=tenant,
            mount_id=mount_id,
            key=key,
            prefix=prefix,
            whole_prefix=whole_prefix,
            methods=[_method(m) for m in methods],
            expires_in_seconds=expires_in_seconds,
        )
        return self._call(self.signer.CreateLink, request, signer_pb2.Link)

    def create_links(
        self,
        tenant: str,
        mount_id: str,
        keys: Sequence[str],
        *,
        methods: Sequence[str] = (),
        expires_in_seconds: int = 0,
    ) -> list[signer_pb2.Link]:
        """One stable link per key, in order."""
        request = signer_pb2.CreateLinksRequest(
            tenant=tenant,
            mount_id=mount_id,
            keys=list(keys),
            methods=[_method(m) for m in methods],
            expires_in_seconds=expires_in_seconds,
        )
        response = self._call(self.signer.CreateLinks, request, signer_pb2.CreateLinksResponse)
        return list(response.links)

    def revoke_link(
        self, tenant: str, mount_id: str, link_id: str, *, reason: str = ""
    ) -> signer_pb2.RevokeLinkResponse:
        request = signer_pb2.RevokeLinkRequest(
            tenant=tenant, mount_id=mount_id, link_id=link_id, reason=reason
        )
        return self._call(self.signer.RevokeLink, request, signer_pb2.RevokeLinkResponse)

    # -- Audit ------------------------------------------------------------------
    def query_audit(
        self,
        tenant: str = "",
        *,
        action: str = "",
        principal: str = "",
        limit: int = 0,
        outcome: str = "",
    ) -> Iterator[audit_pb2.AuditRecord]:
        return self._stream(
            self.audit.QueryAudit,
            audit_pb2.QueryAuditRequest(
                tenant=tenant, action=action, principal=principal, limit=limit, outcome=outcome
            ),
        )

    def verify_audit(self, *, full: bool = False) -> audit_pb2.VerifyAuditResponse:
        return self._call(
            self.audit.VerifyAudit,
            audit_pb2.VerifyAuditRequest(full=full),
            audit_pb2.VerifyAuditResponse,
        )

    def audit_key(self) -> audit_pb2.AuditKey:
        """The public key audit checkpoints are signed with (pin it for offline checks)."""
        return self._call(
            self.audit.GetAuditKey, audit_pb2.GetAuditKeyRequest(), audit_pb2.AuditKey
        )

    def export_audit(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[str]:
        """Archive-format lines (no newlines) for records in [since, until)."""
        request = audit_pb2.ExportAuditRequest()
        if since is not None:
            request.since.FromDatetime(since)
        if until is not None:
            request.until.FromDatetime(until)
        for item in self._stream(self.audit.ExportAudit, request):
            yield item.line


__all__ = ["BucketVaultClient", "tls_credentials", "translate"]
