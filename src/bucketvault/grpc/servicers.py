"""Thin servicers: translate the request, call the app, translate the answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC as _UTC
from typing import Any

from bucketvault.app import App, AuditFilter, ListInput, MountInput, RegisterInput, SignInput
from bucketvault.errors import InvalidArgument
from bucketvault.grpc import convert
from bucketvault.grpc.interceptor import current_call
from bucketvault.models import Method
from bucketvault.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)


def _suite(value: int) -> str:
    if value == vault_pb2.HPKE_SUITE_UNSPECIFIED:
        return vault_pb2.HpkeSuite.Name(vault_pb2.X25519_SHA256_AES256GCM)
    try:
        return vault_pb2.HpkeSuite.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument("unknown HPKE suite", reason="INVALID_FIELD", field="suite") from None


class VaultServicer(vault_pb2_grpc.VaultServicer):
    def __init__(self, app: App) -> None:
        self._app = app

    def GetRegistrationKey(self, request: Any, context: Any) -> vault_pb2.RegistrationKey:
        call = current_call()
        key = self._app.vault.registration_key(call.principal, _suite(request.suite))
        return vault_pb2.RegistrationKey(
            key_id=key.key_id,
            suite=vault_pb2.HpkeSuite.Value(key.suite),
            public_key=key.public_key,
            info_template=key.info_template,
        )

    def GetAwsTrustPolicy(self, request: Any, context: Any) -> vault_pb2.AwsTrustPolicy:
        call = current_call()
        policy = self._app.vault.trust_policy(call.principal, request.tenant, call.request_id)
        return vault_pb2.AwsTrustPolicy(
            external_id=policy.external_id,
            service_principal_arn=policy.service_principal,
            policy_json=policy.policy_json,
        )

    def RegisterCredential(self, request: Any, context: Any) -> vault_pb2.Credential:
        call = current_call()
        cred = self._app.vault.register(
            call.principal,
            RegisterInput(
                tenant=request.tenant,
                display_name=request.display_name,
                kind=convert.kind_from_pb(request.kind),
                key_id=request.sealed_secret.key_id,
                sealed=request.sealed_secret.sealed,
                idempotency_key=request.idempotency_key,
            ),
            call.request_id,
        )
        return convert.credential_to_pb(cred)

    def GetCredential(self, request: Any, context: Any) -> vault_pb2.Credential:
        call = current_call()
        cred = self._app.vault.get(
            call.principal, request.tenant, request.credential_id, call.request_id
        )
        return convert.credential_to_pb(cred)

    def ListCredentials(self, request: Any, context: Any) -> vault_pb2.ListCredentialsResponse:
        call = current_call()
        creds, token = self._app.vault.list(
            call.principal, request.tenant, request.page_size, request.page_token, call.request_id
        )
        return vault_pb2.ListCredentialsResponse(
            credentials=[convert.credential_to_pb(c) for c in creds], next_page_token=token
        )

    def RevokeCredential(self, request: Any, context: Any) -> vault_pb2.Credential:
        call = current_call()
        cred = self._app.vault.revoke(
            call.principal, request.tenant, request.credential_id, request.reason, call.request_id
        )
        return convert.credential_to_pb(cred)

    def CreateMount(self, request: Any, context: Any) -> vault_pb2.Mount:
        call = current_call()
        methods = frozenset(
            m
            for m in (
                convert.method_from_pb(v, "policy.allowed_methods")
                for v in request.policy.allowed_methods
            )
            if m is not None
        )
        mount = self._app.mounts.create(
            call.principal,
            MountInput(
                tenant=request.tenant,
                name=request.name,
                bucket=request.bucket,
                prefix=request.prefix,
                region=request.region,
                endpoint=request.endpoint,
                credential_id=request.credential_id,
                max_ttl_seconds=request.policy.max_ttl_seconds,
                allowed_methods=methods,
            ),
            call.request_id,
        )
        return convert.mount_to_pb(mount)

    def GetMount(self, request: Any, context: Any) -> vault_pb2.Mount:
        call = current_call()
        mount = self._app.mounts.get(
            call.principal, request.tenant, request.mount_id, call.request_id
        )
        return convert.mount_to_pb(mount)

    def ListMounts(self, request: Any, context: Any) -> vault_pb2.ListMountsResponse:
        call = current_call()
        mounts, token = self._app.mounts.list(
            call.principal, request.tenant, request.page_size, request.page_token, call.request_id
        )
        return vault_pb2.ListMountsResponse(
            mounts=[convert.mount_to_pb(m) for m in mounts], next_page_token=token
        )

    def RebindMount(self, request: Any, context: Any) -> vault_pb2.Mount:
        call = current_call()
        mount = self._app.mounts.rebind(
            call.principal,
            request.tenant,
            request.mount_id,
            request.credential_id,
            request.expected_version,
            call.request_id,
        )
        return convert.mount_to_pb(mount)

    def CheckMount(self, request: Any, context: Any) -> vault_pb2.CheckMountResponse:
        call = current_call()
        result = self._app.mounts.check(
            call.principal, request.tenant, request.mount_id, call.request_id
        )
        return convert.check_to_pb(result)


class SignerServicer(signer_pb2_grpc.SignerServicer):
    def __init__(self, app: App) -> None:
        self._app = app

    def SignURL(self, request: Any, context: Any) -> signer_pb2.SignedURL:
        call = current_call()
        urls = self._app.signing.sign(
            call.principal,
            SignInput(
                tenant=request.tenant,
                mount_id=request.mount_id,
                keys=(request.key,),
                method=convert.method_from_pb(request.method) or Method.GET,
                ttl_seconds=request.ttl_seconds,
                response_content_type=request.response_content_type,
                response_content_disposition=request.response_content_disposition,
                content_type=request.content_type,
            ),
            call.request_id,
        )
        return convert.signed_to_pb(urls[0])

    def SignURLs(self, request: Any, context: Any) -> signer_pb2.SignURLsResponse:
        call = current_call()
        urls = self._app.signing.sign(
            call.principal,
            SignInput(
                tenant=request.tenant,
                mount_id=request.mount_id,
                keys=tuple(request.keys),
                method=convert.method_from_pb(request.method) or Method.GET,
                ttl_seconds=request.ttl_seconds,
            ),
            call.request_id,
        )
        return convert.signed_batch_to_pb(urls)

    def ListPrefix(self, request: Any, context: Any) -> Iterator[signer_pb2.ListPrefixPage]:
        call = current_call()
        pages = self._app.signing.list_prefix(
            call.principal,
            ListInput(
                tenant=request.tenant,
                mount_id=request.mount_id,
                prefix=request.prefix,
                delimiter=request.delimiter,
                page_size=request.page_size,
                page_token=request.page_token,
                sign_ttl_seconds=request.sign_ttl_seconds,
            ),
            call.request_id,
        )
        for page in pages:
            yield convert.page_to_pb(page)


class AuditServicer(audit_pb2_grpc.AuditServicer):
    def __init__(self, app: App) -> None:
        self._app = app

    def QueryAudit(self, request: Any, context: Any) -> Iterator[audit_pb2.AuditRecord]:
        call = current_call()
        rows = self._app.audit.query(
            call.principal,
            AuditFilter(
                tenant=request.tenant,
                action=request.action,
                principal=request.principal,
                since=request.since.ToDatetime(tzinfo=_UTC) if request.HasField("since") else None,
                until=request.until.ToDatetime(tzinfo=_UTC) if request.HasField("until") else None,
                limit=max(0, request.limit),
            ),
            call.request_id,
        )
        for row in rows:
            yield convert.audit_to_pb(row)

    def VerifyAudit(self, request: Any, context: Any) -> audit_pb2.VerifyAuditResponse:
        call = current_call()
        result = self._app.audit.verify(call.principal, call.request_id)
        return audit_pb2.VerifyAuditResponse(
            ok=result.ok,
            records_checked=result.records_checked,
            writers=result.writers,
            first_bad_record=result.first_bad_record,
            detail=result.detail,
        )


__all__ = ["AuditServicer", "SignerServicer", "VaultServicer"]
