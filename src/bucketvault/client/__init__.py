"""The Python SDK other services import.

It seals credentials locally (the plaintext never leaves the caller's process) and
maps gRPC status codes back to bucketvault.errors, with ErrorInfo's reason attached.

BucketVaultClient (here) and AsyncBucketVaultClient (client.aio, on grpc.aio) have the
same methods and arguments; what they share (request building, reply unpacking, error
mapping, sealing, the retry and deadline plan) lives once, in client._common.

Deadlines: every unary call has a total deadline, the client's timeout (30 s unless
told) or the call's own timeout=; streamed results (list_prefix, query_audit,
export_audit) have none unless the call passes one. Retries: only UNAVAILABLE, only
for the idempotent RPCs listed in client._common.IDEMPOTENT (and RegisterCredential
with an idempotency key), with exponential backoff and full jitter, at most
RetryPolicy.max_attempts (4) attempts, never past the deadline. A deadline that
passes raises bucketvault.errors.DeadlineExceeded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc

from bucketvault import errors
from bucketvault.client import _common
from bucketvault.client._common import (
    DEFAULT_SUITE,
    DEFAULT_TIMEOUT,
    IDEMPOTENT,
    Attempts,
    RetryPolicy,
    resolve_timeout,
    seconds,
    tls_credentials,
    translate,
)
from bucketvault.client.aio import AsyncBucketVaultClient
from bucketvault.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

T = TypeVar("T")
# The listing replies: a page of items and the token of the next page.
Page = TypeVar("Page", vault_pb2.ListCredentialsResponse, vault_pb2.ListMountsResponse)


class BucketVaultClient:
    """A typed client for the Vault, Signer and Audit services.

    TLS: pass tls_ca (and tls_cert, tls_key for mTLS), or ready channel credentials. The
    token may be empty when the server names this caller by its client certificate.
    timeout: the default total deadline of a unary call, in seconds (None: none).
    retry: how UNAVAILABLE is retried on idempotent calls (RetryPolicy(max_attempts=1)
    turns retries off).
    """

    def __init__(
        self,
        target: str | grpc.Channel,
        token: str = "",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        retry: RetryPolicy | None = None,
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
        self._retry = retry or RetryPolicy()
        self.vault = vault_pb2_grpc.VaultServiceStub(self._channel)
        self.signer = signer_pb2_grpc.SignerServiceStub(self._channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(self._channel)
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

    def _call(
        self,
        stub: Any,
        name: str,
        request: Any,
        returns: type[T],
        timeout: float | None,
        *,
        idempotent: bool | None = None,
    ) -> T:
        """One unary RPC under the call's deadline, retried as _common's plan says."""
        rpc = getattr(stub, name)
        plan = Attempts(
            self._retry,
            resolve_timeout(timeout, self._timeout),
            idempotent=name in IDEMPOTENT if idempotent is None else idempotent,
        )
        while True:
            try:
                return cast(T, rpc(request, metadata=self._metadata, timeout=plan.timeout()))
            except grpc.RpcError as exc:
                error = translate(exc)
            delay = plan.backoff(error)
            if delay is None:
                raise error
            time.sleep(delay)

    def _stream(self, stub: Any, name: str, request: Any, timeout: float | None) -> Iterator[Any]:
        """A server stream; retried (from the start) only before its first item."""
        plan = Attempts(self._retry, timeout, idempotent=name in IDEMPOTENT)
        started = False
        while True:
            try:
                for item in getattr(stub, name)(
                    request, metadata=self._metadata, timeout=plan.timeout()
                ):
                    started = True
                    yield item
                return
            except grpc.RpcError as exc:
                error = translate(exc)
            delay = None if started else plan.backoff(error)
            if delay is None:
                raise error
            time.sleep(delay)

    def _pages(
        self, name: str, request: Any, returns: type[Page], timeout: float | None
    ) -> Iterator[Page]:
        """Every page of a listing: request again with the next token while there is one."""
        while True:
            page = self._call(self.vault, name, request, returns, timeout)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # -- Vault ------------------------------------------------------------------
    def registration_key(
        self, suite: Any = DEFAULT_SUITE, *, timeout: float | None = None
    ) -> vault_pb2.RegistrationKey:
        if suite not in self._reg_keys:
            self._reg_keys[suite] = self._call(
                self.vault,
                "GetRegistrationKey",
                vault_pb2.GetRegistrationKeyRequest(suite=suite),
                vault_pb2.RegistrationKey,
                timeout,
            )
        return self._reg_keys[suite]

    def seal(
        self,
        tenant: str,
        kind: str,
        secret: Mapping[str, Any] | bytes,
        *,
        suite: Any = DEFAULT_SUITE,
        timeout: float | None = None,
    ) -> vault_pb2.SealedSecret:
        """Seal a credential for this service, tenant and kind (HPKE, locally)."""
        key = self.registration_key(suite, timeout=timeout)
        return _common.seal(key, tenant, kind, secret)

    def register_credential(
        self,
        tenant: str,
        kind: str,
        secret: Mapping[str, Any] | bytes,
        *,
        display_name: str = "",
        idempotency_key: str = "",
        suite: Any = DEFAULT_SUITE,
        timeout: float | None = None,
    ) -> vault_pb2.Credential:
        """Seal secret locally and register it; the plaintext is never sent.

        If the service rotated its registration key since this client fetched it, the
        cached key is dropped and the secret sealed again to the current one, once.
        Retried on UNAVAILABLE only with an idempotency_key.
        """
        for attempt in (1, 2):
            try:
                return self.register_sealed(
                    tenant,
                    kind,
                    self.seal(tenant, kind, secret, suite=suite, timeout=timeout),
                    display_name=display_name,
                    idempotency_key=idempotency_key,
                    timeout=timeout,
                )
            except errors.FailedPrecondition as exc:
                if attempt == 2 or not _common.is_stale_key(exc):
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
        timeout: float | None = None,
    ) -> vault_pb2.Credential:
        request = _common.register_request(tenant, kind, sealed, display_name, idempotency_key)
        return self._call(
            self.vault,
            "RegisterCredential",
            request,
            vault_pb2.Credential,
            timeout,
            idempotent=bool(idempotency_key),
        )

    def get_credential(
        self, tenant: str, credential_id: str, *, timeout: float | None = None
    ) -> vault_pb2.Credential:
        request = vault_pb2.GetCredentialRequest(tenant=tenant, credential_id=credential_id)
        return self._call(self.vault, "GetCredential", request, vault_pb2.Credential, timeout)

    def list_credentials(
        self, tenant: str, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[vault_pb2.Credential]:
        """Every credential of the tenant, following page tokens (timeout: per page)."""
        request = vault_pb2.ListCredentialsRequest(tenant=tenant, page_size=page_size)
        for page in self._pages(
            "ListCredentials", request, vault_pb2.ListCredentialsResponse, timeout
        ):
            yield from page.credentials

    def revoke_credential(
        self, tenant: str, credential_id: str, reason: str = "", *, timeout: float | None = None
    ) -> vault_pb2.Credential:
        request = vault_pb2.RevokeCredentialRequest(
            tenant=tenant, credential_id=credential_id, reason=reason
        )
        return self._call(self.vault, "RevokeCredential", request, vault_pb2.Credential, timeout)

    def trust_policy(
        self, tenant: str, *, timeout: float | None = None
    ) -> vault_pb2.AwsTrustPolicy:
        request = vault_pb2.GetAwsTrustPolicyRequest(tenant=tenant)
        return self._call(
            self.vault, "GetAwsTrustPolicy", request, vault_pb2.AwsTrustPolicy, timeout
        )

    def onboarding(
        self, tenant: str, kind: str | int, *, timeout: float | None = None
    ) -> vault_pb2.Onboarding:
        """How the tenant grants the service's own identity access for a keyless kind."""
        request = vault_pb2.GetOnboardingRequest(tenant=tenant, kind=_common.kind_value(kind))
        return self._call(self.vault, "GetOnboarding", request, vault_pb2.Onboarding, timeout)

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
        max_ttl: timedelta | None = None,
        timeout: float | None = None,
    ) -> vault_pb2.Mount:
        request = _common.create_mount_request(
            tenant,
            name=name,
            bucket=bucket,
            credential_id=credential_id,
            prefix=prefix,
            region=region,
            endpoint=endpoint,
            max_ttl_seconds=seconds(max_ttl_seconds, max_ttl, "max_ttl"),
            allowed_methods=allowed_methods,
            allow_credential_lifetime=allow_credential_lifetime,
            cache_stable_urls=cache_stable_urls,
        )
        return self._call(self.vault, "CreateMount", request, vault_pb2.Mount, timeout)

    def get_mount(
        self, tenant: str, mount_id: str, *, timeout: float | None = None
    ) -> vault_pb2.Mount:
        request = vault_pb2.GetMountRequest(tenant=tenant, mount_id=mount_id)
        return self._call(self.vault, "GetMount", request, vault_pb2.Mount, timeout)

    def list_mounts(
        self, tenant: str, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[vault_pb2.Mount]:
        request = vault_pb2.ListMountsRequest(tenant=tenant, page_size=page_size)
        for page in self._pages("ListMounts", request, vault_pb2.ListMountsResponse, timeout):
            yield from page.mounts

    def rebind_mount(
        self,
        tenant: str,
        mount_id: str,
        credential_id: str,
        expected_version: int,
        *,
        bucket: str = "",
        prefix: str = "",
        region: str = "",
        endpoint: str = "",
        timeout: float | None = None,
    ) -> vault_pb2.Mount:
        """With bucket (prefix, region, endpoint): move the mount there, on the
        credential's cloud, any cloud; the mount id and keys stay. Without: the location
        stays and a credential of another cloud is refused (KIND_MISMATCH).
        Never retried: see client._common.IDEMPOTENT for why."""
        request = _common.rebind_mount_request(
            tenant,
            mount_id,
            credential_id,
            expected_version,
            _common.location(bucket, prefix, region, endpoint),
        )
        return self._call(self.vault, "RebindMount", request, vault_pb2.Mount, timeout)

    def update_mount(
        self,
        tenant: str,
        mount_id: str,
        expected_version: int,
        *,
        name: str = "",
        policy: vault_pb2.MountPolicy | None = None,
        timeout: float | None = None,
    ) -> vault_pb2.Mount:
        """A new name ("" keeps it) and/or policy (None keeps it; one given replaces the
        whole policy: start from the mount's own). Never retried (compare-and-swap)."""
        request = _common.update_mount_request(tenant, mount_id, expected_version, name, policy)
        return self._call(self.vault, "UpdateMount", request, vault_pb2.Mount, timeout)

    def delete_mount(
        self, tenant: str, mount_id: str, expected_version: int, *, timeout: float | None = None
    ) -> vault_pb2.Mount:
        """Remove the mount; the reply is the mount as it was. Never retried
        (compare-and-swap)."""
        request = vault_pb2.DeleteMountRequest(
            tenant=tenant, mount_id=mount_id, expected_version=expected_version
        )
        return self._call(self.vault, "DeleteMount", request, vault_pb2.Mount, timeout)

    def check_mount(
        self, tenant: str, mount_id: str, *, origin: str = "", timeout: float | None = None
    ) -> vault_pb2.CheckMountResponse:
        """origin: a browser origin to probe CORS for, before the configured ones."""
        request = vault_pb2.CheckMountRequest(tenant=tenant, mount_id=mount_id, origin=origin)
        return self._call(self.vault, "CheckMount", request, vault_pb2.CheckMountResponse, timeout)

    def check_new_mount(
        self,
        tenant: str,
        *,
        credential_id: str,
        bucket: str,
        prefix: str = "",
        region: str = "",
        endpoint: str = "",
        max_ttl_seconds: int = 0,
        allowed_methods: Iterable[str] = (),
        origin: str = "",
        timeout: float | None = None,
    ) -> vault_pb2.CheckMountResponse:
        """CheckMount for a mount not created yet (create_mount's fields): nothing is
        written, so a credential and location can be checked before a create or a move."""
        request = _common.check_new_mount_request(
            tenant,
            credential_id=credential_id,
            where=vault_pb2.MountLocation(
                bucket=bucket, prefix=prefix, region=region, endpoint=endpoint
            ),
            max_ttl_seconds=max_ttl_seconds,
            allowed_methods=allowed_methods,
            origin=origin,
        )
        return self._call(self.vault, "CheckMount", request, vault_pb2.CheckMountResponse, timeout)

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
        ttl: timedelta | None = None,
        uri: str = "",
        timeout: float | None = None,
    ) -> signer_pb2.SignedURL:
        """uri (s3://, gs://, az://, https object URL) instead of mount_id and key: the
        reply's mount_id says which mount it resolved to."""
        request = _common.sign_url_request(
            tenant,
            mount_id,
            key,
            method=method,
            ttl_seconds=seconds(ttl_seconds, ttl, "ttl"),
            uri=uri,
            response_content_type=response_content_type,
            response_content_disposition=response_content_disposition,
            content_type=content_type,
        )
        return self._call(self.signer, "SignURL", request, signer_pb2.SignedURL, timeout)

    def sign_urls(
        self,
        tenant: str,
        mount_id: str,
        keys: Sequence[str],
        *,
        method: str = "GET",
        ttl_seconds: int = 0,
        compact: bool = True,
        ttl: timedelta | None = None,
        uris: Sequence[str] = (),
        timeout: float | None = None,
    ) -> list[signer_pb2.SignedURL]:
        """One SignedURL per key, in order. compact: ask for the packed reply (shared
        fields once); unpacked here, so the result is the same either way. uris (with
        mount_id "" and keys ()): object URIs of one mount; the full reply is asked for,
        as only it names each URI's key."""
        keys = list(keys)
        request = _common.sign_urls_request(
            tenant,
            mount_id,
            keys,
            method=method,
            ttl_seconds=seconds(ttl_seconds, ttl, "ttl"),
            compact=compact,
            uris=uris,
        )
        response = self._call(
            self.signer, "SignURLs", request, signer_pb2.SignURLsResponse, timeout
        )
        return _common.unpack_sign_urls(keys, response)

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
        sign_ttl: timedelta | None = None,
        timeout: float | None = None,
    ) -> Iterator[signer_pb2.ListPrefixPage]:
        return self._stream(
            self.signer,
            "ListPrefix",
            signer_pb2.ListPrefixRequest(
                tenant=tenant,
                mount_id=mount_id,
                prefix=prefix,
                delimiter=delimiter,
                page_size=page_size,
                page_token=page_token,
                sign_ttl_seconds=seconds(sign_ttl_seconds, sign_ttl, "sign_ttl"),
            ),
            timeout,
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
        expires_in: timedelta | None = None,
        timeout: float | None = None,
    ) -> signer_pb2.Link:
        """A stable link to key, or (whole_prefix) a base for every key under prefix."""
        request = _common.create_link_request(
            tenant,
            mount_id,
            key,
            prefix=prefix,
            whole_prefix=whole_prefix,
            methods=methods,
            expires_in_seconds=seconds(expires_in_seconds, expires_in, "expires_in"),
        )
        return self._call(self.signer, "CreateLink", request, signer_pb2.Link, timeout)

    def create_links(
        self,
        tenant: str,
        mount_id: str,
        keys: Sequence[str],
        *,
        methods: Sequence[str] = (),
        expires_in_seconds: int = 0,
        expires_in: timedelta | None = None,
        timeout: float | None = None,
    ) -> list[signer_pb2.Link]:
        """One stable link per key, in order."""
        request = _common.create_links_request(
            tenant, mount_id, keys, methods, seconds(expires_in_seconds, expires_in, "expires_in")
        )
        response = self._call(
            self.signer, "CreateLinks", request, signer_pb2.CreateLinksResponse, timeout
        )
        return list(response.links)

    def revoke_link(
        self,
        tenant: str,
        mount_id: str,
        link_id: str,
        *,
        reason: str = "",
        timeout: float | None = None,
    ) -> signer_pb2.RevokeLinkResponse:
        request = signer_pb2.RevokeLinkRequest(
            tenant=tenant, mount_id=mount_id, link_id=link_id, reason=reason
        )
        return self._call(
            self.signer, "RevokeLink", request, signer_pb2.RevokeLinkResponse, timeout
        )

    # -- Audit ------------------------------------------------------------------
    def query_audit(
        self,
        tenant: str = "",
        *,
        action: str = "",
        principal: str = "",
        limit: int = 0,
        outcome: str = "",
        timeout: float | None = None,
    ) -> Iterator[audit_pb2.AuditRecord]:
        return self._stream(
            self.audit,
            "QueryAudit",
            audit_pb2.QueryAuditRequest(
                tenant=tenant, action=action, principal=principal, limit=limit, outcome=outcome
            ),
            timeout,
        )

    def verify_audit(
        self, *, full: bool = False, timeout: float | None = None
    ) -> audit_pb2.VerifyAuditResponse:
        return self._call(
            self.audit,
            "VerifyAudit",
            audit_pb2.VerifyAuditRequest(full=full),
            audit_pb2.VerifyAuditResponse,
            timeout,
        )

    def audit_key(self, *, timeout: float | None = None) -> audit_pb2.AuditKey:
        """The public key audit checkpoints are signed with (pin it for offline checks)."""
        return self._call(
            self.audit, "GetAuditKey", audit_pb2.GetAuditKeyRequest(), audit_pb2.AuditKey, timeout
        )

    def export_audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Archive-format lines (no newlines) for records in [since, until)."""
        request = _common.export_audit_request(since, until)
        for item in self._stream(self.audit, "ExportAudit", request, timeout):
            yield item.line


__all__ = [
    "AsyncBucketVaultClient",
    "BucketVaultClient",
    "RetryPolicy",
    "tls_credentials",
    "translate",
]
