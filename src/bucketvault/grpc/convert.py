"""Translation between protobuf messages and bucketvault.models (no logic here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from bucketvault.app import AuditRow
from bucketvault.errors import InvalidArgument
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    Method,
    Mount,
    SignedUrl,
)
from bucketvault.v1 import audit_pb2, common_pb2, signer_pb2, vault_pb2


def ts(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    out = Timestamp()
    out.FromDatetime(when)
    return out


def kind_from_pb(value: int) -> CredentialKind | None:
    if value == common_pb2.CREDENTIAL_KIND_UNSPECIFIED:
        return None
    try:
        return CredentialKind(common_pb2.CredentialKind.Name(value))  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(
            "unknown credential kind", reason="UNKNOWN_KIND", field="kind"
        ) from None


def kind_to_pb(kind: CredentialKind) -> common_pb2.CredentialKind.ValueType:
    return common_pb2.CredentialKind.Value(kind.value)


def method_from_pb(value: int, field: str = "method") -> Method | None:
    if value == common_pb2.METHOD_UNSPECIFIED:
        return None
    try:
        return Method(common_pb2.Method.Name(value))  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument("unknown method", reason="INVALID_FIELD", field=field) from None


def method_to_pb(method: Method) -> common_pb2.Method.ValueType:
    return common_pb2.Method.Value(method.value)


def credential_to_pb(c: Credential) -> vault_pb2.Credential:
    return vault_pb2.Credential(
        credential_id=c.credential_id,
        tenant=c.tenant,
        display_name=c.display_name,
        kind=kind_to_pb(c.kind),
        state=vault_pb2.CredentialState.Value(c.state.value),
        fingerprint=c.fingerprint,
        created_at=ts(c.created_at),
        created_by=c.created_by,
        revoked_at=ts(c.revoked_at),
        revoked_by=c.revoked_by,
        revoke_reason=c.revoke_reason,
        metadata=dict(c.metadata),
        warnings=list(c.warnings),
    )


def mount_to_pb(m: Mount, kind: CredentialKind | None = None) -> vault_pb2.Mount:
    return vault_pb2.Mount(
        mount_id=m.mount_id,
        tenant=m.tenant,
        name=m.name,
        bucket=m.bucket,
        prefix=m.prefix,
        region=m.region,
        endpoint=m.endpoint,
        credential_id=m.credential_id,
        policy=vault_pb2.MountPolicy(
            max_ttl_seconds=m.policy.max_ttl_seconds,
            allowed_methods=sorted(method_to_pb(x) for x in m.policy.allowed_methods),
        ),
        version=m.version,
        created_at=ts(m.created_at),
        updated_at=ts(m.updated_at),
        credential_kind=kind_to_pb(kind) if kind else common_pb2.CREDENTIAL_KIND_UNSPECIFIED,
    )


def signed_to_pb(s: SignedUrl) -> signer_pb2.SignedURL:
    return signer_pb2.SignedURL(
        url=s.url,
        method=method_to_pb(s.method),
        expires_at=ts(s.expires_at),
        required_headers=dict(s.required_headers),
        key=s.key,
        expiry_capped_by=s.expiry_capped_by,
    )


def signed_batch_to_pb(urls: Sequence[SignedUrl]) -> signer_pb2.SignURLsResponse:
    """The SignURLs response. URLs of one call share their expiry and method, so those
    are converted once; ``add`` fills the repeated field without a temporary message."""
    response = signer_pb2.SignURLsResponse()
    add = response.urls.add
    stamps: dict[datetime, Timestamp | None] = {}
    methods = {m: method_to_pb(m) for m in Method}
    for s in urls:
        stamp = stamps.get(s.expires_at)
        if stamp is None:
            stamp = stamps[s.expires_at] = ts(s.expires_at)
        if s.required_headers:
            add(
                url=s.url,
                method=methods[s.method],
                expires_at=stamp,
                key=s.key,
                expiry_capped_by=s.expiry_capped_by,
                required_headers=dict(s.required_headers),
            )
        else:
            add(
                url=s.url,
                method=methods[s.method],
                expires_at=stamp,
                key=s.key,
                expiry_capped_by=s.expiry_capped_by,
            )
    return response


def page_to_pb(page: ListPage) -> signer_pb2.ListPrefixPage:
    return signer_pb2.ListPrefixPage(
        entries=[
            signer_pb2.ListEntry(
                key=e.key,
                size=e.size,
                etag=e.etag,
                last_modified=ts(e.last_modified),
                url=e.url,
                url_error=e.url_error,
            )
            for e in page.entries
        ],
        common_prefixes=list(page.common_prefixes),
        next_page_token=page.next_page_token,
    )


def check_to_pb(result: CheckResult) -> vault_pb2.CheckMountResponse:
    return vault_pb2.CheckMountResponse(
        state=vault_pb2.CheckMountResponse.State.Value(result.state.value),
        reason=result.reason,
        detail=result.detail,
    )


def audit_to_pb(row: AuditRow) -> audit_pb2.AuditRecord:
    detail = json.loads(row.detail_json or "{}")
    return audit_pb2.AuditRecord(
        writer_id=row.writer_id,
        seq=row.seq,
        time=ts(row.time),
        principal=row.principal,
        tenant=row.tenant,
        action=row.action,
        resource=row.resource,
        outcome=row.outcome,
        request_id=row.request_id,
        detail={str(k): str(v) for k, v in detail.items()},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
