"""Translation between protobuf messages and bucketvault.models (no logic here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from bucketvault.app import (
    AuditFilter,
    AuditKey,
    AuditRow,
    ListInput,
    Location,
    MountInput,
    MountUpdate,
    PolicyInput,
    Prospect,
    RegisterInput,
    RegistrationKey,
    SealedSecret,
    Signed,
    SignInput,
)
from bucketvault.audit import VerifyResult
from bucketvault.errors import InvalidArgument
from bucketvault.models import (
    NO_OVERRIDES,
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    Method,
    Mount,
    Onboarding,
    Overrides,
    SignedUrl,
)
from bucketvault.protoenums import number, short_name
from bucketvault.providers.base import TrustPolicy
from bucketvault.v1 import audit_pb2, common_pb2, signer_pb2, vault_pb2

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Input = TypeVar("Input", bound=DataclassInstance)

Reply = TypeVar("Reply", bound=Message)


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
        return CredentialKind(short_name(common_pb2.CredentialKind, value))
    except ValueError:
        raise InvalidArgument(
            "unknown credential kind", reason="UNKNOWN_KIND", field="kind"
        ) from None


def kind_to_pb(kind: CredentialKind) -> common_pb2.CredentialKind.ValueType:
    return common_pb2.CredentialKind.ValueType(number(common_pb2.CredentialKind, kind.value))


def method_from_pb(value: int, field: str = "method") -> Method | None:
    if value == common_pb2.METHOD_UNSPECIFIED:
        return None
    try:
        return Method(short_name(common_pb2.Method, value))
    except ValueError:
        raise InvalidArgument("unknown method", reason="INVALID_FIELD", field=field) from None


def method_to_pb(method: Method) -> common_pb2.Method.ValueType:
    return common_pb2.Method.ValueType(number(common_pb2.Method, method.value))


def _shared(
    record: type[DataclassInstance] | DataclassInstance,
    message: Message | type[Message],
    source: object,
    converted: dict[str, Any],
) -> dict[str, Any]:
    """Values from source for the fields a dataclass and a message both name, minus the
    converted ones: the contract and the app's records name their fields alike."""
    carried = message.DESCRIPTOR.fields_by_name
    return {
        f.name: getattr(source, f.name)
        for f in dataclasses.fields(record)
        if f.name in carried and f.name not in converted
    }


def from_request(cls: type[Input], request: Message, **converted: Any) -> Input:
    """An app input from a request: fields copied by name unless converted; one the request
    lacks keeps the dataclass default."""
    return cls(**_shared(cls, request, request, converted), **converted)


def to_message(cls: type[Reply], record: DataclassInstance, **converted: Any) -> Reply:
    """A reply message from a record, the mirror of ``from_request``: fields copied by name
    unless converted; the rest of the record (an audit row's raw detail JSON ...) is not
    part of the contract."""
    return cls(**_shared(record, cls, record, converted), **converted)


def _when(request: Message, name: str) -> datetime | None:
    return getattr(request, name).ToDatetime(tzinfo=UTC) if request.HasField(name) else None


def time_field(name: str) -> Callable[[Message], datetime | None]:
    """A use case argument read from an optional Timestamp field of the request."""
    return lambda request: _when(request, name)


def register_input(request: vault_pb2.RegisterCredentialRequest) -> RegisterInput:
    return from_request(
        RegisterInput,
        request,
        kind=kind_from_pb(request.kind),
        sealed_secret=SealedSecret(request.sealed_secret.key_id, request.sealed_secret.sealed),
    )


def mount_input(request: vault_pb2.CreateMountRequest) -> MountInput:
    methods = (method_from_pb(v, "policy.allowed_methods") for v in request.policy.allowed_methods)
    return from_request(
        MountInput,
        request,
        max_ttl_seconds=request.policy.max_ttl_seconds,
        allowed_methods=frozenset(m for m in methods if m is not None),
        allow_credential_lifetime=request.policy.allow_credential_lifetime,
        cache_stable_urls=not request.policy.disable_stable_urls,
    )


def policy_input(policy: vault_pb2.MountPolicy) -> PolicyInput:
    methods = (method_from_pb(v, "policy.allowed_methods") for v in policy.allowed_methods)
    return PolicyInput(
        max_ttl_seconds=policy.max_ttl_seconds,
        allowed_methods=frozenset(m for m in methods if m is not None),
        allow_credential_lifetime=policy.allow_credential_lifetime,
        cache_stable_urls=not policy.disable_stable_urls,
    )


def location_input(
    request: vault_pb2.RebindMountRequest | vault_pb2.CheckMountRequest,
) -> Location | None:
    """The request's location, or None when it has none (unset: no move)."""
    if not request.HasField("location"):
        return None
    return from_request(Location, request.location)


def mount_update(request: vault_pb2.UpdateMountRequest) -> MountUpdate:
    policy = policy_input(request.policy) if request.HasField("policy") else None
    return from_request(MountUpdate, request, policy=policy)


def prospect_input(request: vault_pb2.CheckMountRequest) -> Prospect | None:
    """A mount that does not exist yet, when the request names a credential or a
    location instead of (or besides: refused by the use case) a mount id."""
    if not request.credential_id and not request.HasField("location"):
        return None
    return Prospect(
        credential_id=request.credential_id,
        location=location_input(request) or Location(bucket=""),
        policy=policy_input(request.policy),
    )


def sign_input(request: signer_pb2.SignURLRequest | signer_pb2.SignURLsRequest) -> SignInput:
    """SignURL names one key, SignURLs many; the use case always takes a tuple."""
    if isinstance(request, signer_pb2.SignURLRequest):
        uris: tuple[str, ...] = (request.uri,) if request.uri else ()
        # By URI, a key is an error only when one was sent.
        keys: tuple[str, ...] = (request.key,) if request.key or not uris else ()
        overrides = Overrides(
            request.response_content_type,
            request.response_content_disposition,
            request.content_type,
        )
    else:
        keys, uris, overrides = tuple(request.keys), tuple(request.uris), NO_OVERRIDES
    return from_request(
        SignInput,
        request,
        keys=keys,
        uris=uris,
        method=method_from_pb(request.method) or Method.GET,
        overrides=overrides,
    )


def list_input(request: signer_pb2.ListPrefixRequest) -> ListInput:
    return from_request(ListInput, request)


def audit_filter(request: audit_pb2.QueryAuditRequest) -> AuditFilter:
    return from_request(
        AuditFilter,
        request,
        since=_when(request, "since"),
        until=_when(request, "until"),
        limit=max(0, request.limit),
    )


def registration_key_to_pb(key: RegistrationKey) -> vault_pb2.RegistrationKey:
    return to_message(vault_pb2.RegistrationKey, key, suite=number(vault_pb2.HpkeSuite, key.suite))


def trust_policy_to_pb(policy: TrustPolicy) -> vault_pb2.AwsTrustPolicy:
    return vault_pb2.AwsTrustPolicy(
        external_id=policy.external_id,
        service_principal_arn=policy.service_principal,
        policy_json=policy.policy_json,
    )


def onboarding_input(request: vault_pb2.GetOnboardingRequest) -> CredentialKind | None:
    return kind_from_pb(request.kind)


def onboarding_to_pb(o: Onboarding) -> vault_pb2.Onboarding:
    return vault_pb2.Onboarding(
        kind=kind_to_pb(o.kind), identity=o.identity, steps=list(o.steps), links=dict(o.links)
    )


def credential_to_pb(c: Credential) -> vault_pb2.Credential:
    return to_message(
        vault_pb2.Credential,
        c,
        kind=kind_to_pb(c.kind),
        state=number(vault_pb2.CredentialState, c.state.value),
        created_at=ts(c.created_at),
        revoked_at=ts(c.revoked_at),
        metadata=dict(c.metadata),
        warnings=list(c.warnings),
    )


def mount_to_pb(m: Mount, kind: CredentialKind | None = None) -> vault_pb2.Mount:
    return to_message(
        vault_pb2.Mount,
        m,
        policy=vault_pb2.MountPolicy(
            max_ttl_seconds=m.policy.max_ttl_seconds,
            allowed_methods=sorted(method_to_pb(x) for x in m.policy.allowed_methods),
            allow_credential_lifetime=m.policy.allow_credential_lifetime,
            disable_stable_urls=not m.policy.cache_stable_urls,
        ),
        created_at=ts(m.created_at),
        updated_at=ts(m.updated_at),
        credential_kind=kind_to_pb(kind) if kind else common_pb2.CREDENTIAL_KIND_UNSPECIFIED,
    )


def signed_to_pb(s: SignedUrl, mount_id: str = "") -> signer_pb2.SignedURL:
    out = signer_pb2.SignedURL(
        url=s.url,
        method=method_to_pb(s.method),
        expires_at=ts(s.expires_at),
        key=s.key,
        expiry_capped_by=s.expiry_capped_by,
        mount_id=mount_id,
    )
    # Most URLs need no headers: the map is touched only when there are some.
    if s.required_headers:
        out.required_headers.update(s.required_headers)
    return out


def credential_page_to_pb(
    page: tuple[Sequence[Credential], str],
) -> vault_pb2.ListCredentialsResponse:
    credentials, token = page
    return vault_pb2.ListCredentialsResponse(
        credentials=[credential_to_pb(c) for c in credentials], next_page_token=token
    )


def mount_page_to_pb(page: tuple[Sequence[Mount], str]) -> vault_pb2.ListMountsResponse:
    mounts, token = page
    return vault_pb2.ListMountsResponse(
        mounts=[mount_to_pb(m) for m in mounts], next_page_token=token
    )


def first_signed_to_pb(signed: Signed) -> signer_pb2.SignedURL:
    """SignURL's reply: the one URL of a one-key batch, and the mount that signed it."""
    return signed_to_pb(signed.urls[0], signed.mount_id)


def signed_batch_to_pb(batch: Signed) -> signer_pb2.SignURLsResponse:
    """The SignURLs response. URLs of one call share their expiry and method, so those
    are converted once; ``add`` fills the repeated field without a temporary message, and
    the headers map is touched only when there are headers (most URLs have none)."""
    urls = batch.urls
    response = signer_pb2.SignURLsResponse(mount_id=batch.mount_id)
    add = response.urls.add
    stamps: dict[datetime, Timestamp | None] = {}
    methods = {m: method_to_pb(m) for m in Method}
    for s in urls:
        stamp = stamps.get(s.expires_at)
        if stamp is None:
            stamp = stamps[s.expires_at] = ts(s.expires_at)
        signed = add(
            url=s.url,
            method=methods[s.method],
            expires_at=stamp,
            key=s.key,
            expiry_capped_by=s.expiry_capped_by,
        )
        if s.required_headers:
            signed.required_headers.update(s.required_headers)
    return response


def compact_batch_to_pb(signed: Signed) -> signer_pb2.SignURLsResponse:
    """The SignURLs response in its compact form: the URLs, and once what they share."""
    urls = signed.urls
    first = urls[0]
    return signer_pb2.SignURLsResponse(
        mount_id=signed.mount_id,
        compact_urls=[s.url for s in urls],
        expires_at=ts(first.expires_at),
        required_headers=dict(first.required_headers),
        expiry_capped_by=first.expiry_capped_by,
        method=method_to_pb(first.method),
    )


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
    state = number(vault_pb2.CheckMountResponse.State, result.state.value)
    cors = [to_message(vault_pb2.CorsCheck, verdict) for verdict in result.cors]
    return to_message(
        vault_pb2.CheckMountResponse, result, state=state, enforced_scope=result.scope, cors=cors
    )


def audit_to_pb(row: AuditRow) -> audit_pb2.AuditRecord:
    """A record: the event's fields by name, and its place in the chain."""
    e = row.event
    return to_message(
        audit_pb2.AuditRecord,
        e,
        writer_id=row.writer_id,
        seq=row.seq,
        prev_hash=row.prev_hash,
        hash=row.hash,
        hash_version=row.v,
        time=ts(e.time),
        expires_at=ts(e.expires_at),
        keys=list(e.keys),
        detail=e.detail,
    )


def verify_to_pb(result: VerifyResult) -> audit_pb2.VerifyAuditResponse:
    return to_message(audit_pb2.VerifyAuditResponse, result)


def audit_key_to_pb(key: AuditKey) -> audit_pb2.AuditKey:
    return to_message(audit_pb2.AuditKey, key)


def archive_line_to_pb(line: str) -> audit_pb2.AuditArchiveLine:
    return audit_pb2.AuditArchiveLine(line=line)
