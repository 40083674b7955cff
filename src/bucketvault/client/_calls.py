"""The RPCs both clients offer, once: each function here has the public method's
parameters, defaults and docstring, checks its arguments, builds the request and says
how the reply becomes the result. It sends nothing.

BucketVaultClient and AsyncBucketVaultClient turn each into a method (method_of gives
it the function's name, docstring and signature), so the two clients cannot drift apart
and a new RPC is written here once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar, cast

from bucketvault.client import _common
from bucketvault.client._common import method_value, seconds
from bucketvault.v1 import audit_pb2, signer_pb2, vault_pb2

R = TypeVar("R")
M = TypeVar("M", bound=Callable[..., Any])
Service = Literal["vault", "signer", "audit"]


def _as(reply: type[R]) -> Callable[[Any], R]:
    """The reply as it comes: the client method returns the message itself."""
    return lambda message: cast(R, message)


def method_of(spec: Callable[..., Any], method: M) -> M:
    """method, named and documented as spec, with spec's parameters after self: what
    help(), inspect and tests/sdk/public_api.txt see."""
    functools.update_wrapper(method, spec)
    sig = inspect.signature(spec)
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # No return annotation: spec's is the call it builds, not what the method returns.
    method.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[this, *sig.parameters.values()], return_annotation=sig.empty
    )
    return method


@dataclass(frozen=True)
class Unary(Generic[R]):
    """One unary RPC ready to send, and how its reply becomes the method's result."""

    service: Service
    name: str
    request: Any
    unpack: Callable[[Any], R]
    timeout: float | None
    # None: retried as _common.IDEMPOTENT lists the name.
    idempotent: bool | None = None


@dataclass(frozen=True)
class Stream(Generic[R]):
    """One server-streaming RPC; unpack turns each streamed message into an item."""

    service: Service
    name: str
    request: Any
    unpack: Callable[[Any], R]
    timeout: float | None


@dataclass(frozen=True)
class Pages(Generic[R]):
    """A paged Vault listing: asked again with the next page token while there is one."""

    name: str
    request: Any
    items: Callable[[Any], Iterable[R]]
    timeout: float | None


# -- Vault ---------------------------------------------------------------------------


def register_sealed(
    tenant: str,
    kind: str | int,
    sealed: vault_pb2.SealedSecret,
    *,
    display_name: str = "",
    idempotency_key: str = "",
    timeout: float | None = None,
) -> Unary[vault_pb2.Credential]:
    """Register a secret sealed already (seal()); retried on UNAVAILABLE only with an
    idempotency_key."""
    request = _common.register_request(tenant, kind, sealed, display_name, idempotency_key)
    return Unary(
        "vault",
        "RegisterCredential",
        request,
        _as(vault_pb2.Credential),
        timeout,
        idempotent=bool(idempotency_key),
    )


def get_credential(
    tenant: str, credential_id: str, *, timeout: float | None = None
) -> Unary[vault_pb2.Credential]:
    request = vault_pb2.GetCredentialRequest(tenant=tenant, credential_id=credential_id)
    return Unary("vault", "GetCredential", request, _as(vault_pb2.Credential), timeout)


def list_credentials(
    tenant: str, *, page_size: int = 0, timeout: float | None = None
) -> Pages[vault_pb2.Credential]:
    """Every credential of the tenant, following page tokens (timeout: per page)."""
    request = vault_pb2.ListCredentialsRequest(tenant=tenant, page_size=page_size)
    return Pages("ListCredentials", request, lambda page: page.credentials, timeout)


def revoke_credential(
    tenant: str, credential_id: str, reason: str = "", *, timeout: float | None = None
) -> Unary[vault_pb2.Credential]:
    request = vault_pb2.RevokeCredentialRequest(
        tenant=tenant, credential_id=credential_id, reason=reason
    )
    return Unary("vault", "RevokeCredential", request, _as(vault_pb2.Credential), timeout)


def trust_policy(tenant: str, *, timeout: float | None = None) -> Unary[vault_pb2.AwsTrustPolicy]:
    request = vault_pb2.GetAwsTrustPolicyRequest(tenant=tenant)
    return Unary("vault", "GetAwsTrustPolicy", request, _as(vault_pb2.AwsTrustPolicy), timeout)


def onboarding(
    tenant: str, kind: str | int, *, timeout: float | None = None
) -> Unary[vault_pb2.Onboarding]:
    """How the tenant grants the service's own identity access for a keyless kind."""
    request = vault_pb2.GetOnboardingRequest(tenant=tenant, kind=_common.kind_value(kind))
    return Unary("vault", "GetOnboarding", request, _as(vault_pb2.Onboarding), timeout)


def create_mount(
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
) -> Unary[vault_pb2.Mount]:
    """A new mount of bucket (and prefix) through credential_id. Never retried: a
    repeat fails MOUNT_NAME_TAKEN."""
    request = vault_pb2.CreateMountRequest(
        tenant=tenant,
        name=name,
        bucket=bucket,
        prefix=prefix,
        region=region,
        endpoint=endpoint,
        credential_id=credential_id,
        policy=vault_pb2.MountPolicy(
            max_ttl_seconds=seconds(max_ttl_seconds, max_ttl, "max_ttl"),
            allowed_methods=[method_value(m) for m in allowed_methods],
            allow_credential_lifetime=allow_credential_lifetime,
            disable_stable_urls=not cache_stable_urls,
        ),
    )
    return Unary("vault", "CreateMount", request, _as(vault_pb2.Mount), timeout)


def get_mount(
    tenant: str, mount_id: str, *, timeout: float | None = None
) -> Unary[vault_pb2.Mount]:
    request = vault_pb2.GetMountRequest(tenant=tenant, mount_id=mount_id)
    return Unary("vault", "GetMount", request, _as(vault_pb2.Mount), timeout)


def list_mounts(
    tenant: str, *, page_size: int = 0, timeout: float | None = None
) -> Pages[vault_pb2.Mount]:
    """Every mount of the tenant, following page tokens (timeout: per page)."""
    request = vault_pb2.ListMountsRequest(tenant=tenant, page_size=page_size)
    return Pages("ListMounts", request, lambda page: page.mounts, timeout)


def rebind_mount(
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
) -> Unary[vault_pb2.Mount]:
    """With bucket (prefix, region, endpoint): move the mount there, on the
    credential's cloud, any cloud; the mount id and keys stay. Without: the location
    stays and a credential of another cloud is refused (KIND_MISMATCH).
    Never retried: see client._common.IDEMPOTENT for why."""
    request = vault_pb2.RebindMountRequest(
        tenant=tenant,
        mount_id=mount_id,
        credential_id=credential_id,
        expected_version=expected_version,
        location=_common.location(bucket, prefix, region, endpoint),
    )
    return Unary("vault", "RebindMount", request, _as(vault_pb2.Mount), timeout)


def update_mount(
    tenant: str,
    mount_id: str,
    expected_version: int,
    *,
    name: str = "",
    policy: vault_pb2.MountPolicy | None = None,
    timeout: float | None = None,
) -> Unary[vault_pb2.Mount]:
    """A new name ("" keeps it) and/or policy (None keeps it; one given replaces the
    whole policy: start from the mount's own). Never retried (compare-and-swap)."""
    request = vault_pb2.UpdateMountRequest(
        tenant=tenant,
        mount_id=mount_id,
        expected_version=expected_version,
        name=name,
        policy=policy,
    )
    return Unary("vault", "UpdateMount", request, _as(vault_pb2.Mount), timeout)


def delete_mount(
    tenant: str, mount_id: str, expected_version: int, *, timeout: float | None = None
) -> Unary[vault_pb2.Mount]:
    """Remove the mount; the reply is the mount as it was. Never retried
    (compare-and-swap)."""
    request = vault_pb2.DeleteMountRequest(
        tenant=tenant, mount_id=mount_id, expected_version=expected_version
    )
    return Unary("vault", "DeleteMount", request, _as(vault_pb2.Mount), timeout)


def check_mount(
    tenant: str, mount_id: str, *, origin: str = "", timeout: float | None = None
) -> Unary[vault_pb2.CheckMountResponse]:
    """origin: a browser origin to probe CORS for, before the configured ones."""
    request = vault_pb2.CheckMountRequest(tenant=tenant, mount_id=mount_id, origin=origin)
    return Unary("vault", "CheckMount", request, _as(vault_pb2.CheckMountResponse), timeout)


def check_new_mount(
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
) -> Unary[vault_pb2.CheckMountResponse]:
    """CheckMount for a mount not created yet (create_mount's fields): nothing is
    written, so a credential and location can be checked before a create or a move."""
    request = vault_pb2.CheckMountRequest(
        tenant=tenant,
        credential_id=credential_id,
        location=vault_pb2.MountLocation(
            bucket=bucket, prefix=prefix, region=region, endpoint=endpoint
        ),
        origin=origin,
        policy=vault_pb2.MountPolicy(
            max_ttl_seconds=max_ttl_seconds,
            allowed_methods=[method_value(m) for m in allowed_methods],
        ),
    )
    return Unary("vault", "CheckMount", request, _as(vault_pb2.CheckMountResponse), timeout)


# -- Signer --------------------------------------------------------------------------


def sign_url(
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
) -> Unary[signer_pb2.SignedURL]:
    """uri (s3://, gs://, az://, https object URL) instead of mount_id and key: the
    reply's mount_id says which mount it resolved to."""
    request = signer_pb2.SignURLRequest(
        tenant=tenant,
        uri=uri,
        mount_id=mount_id,
        key=key,
        method=method_value(method),
        ttl_seconds=seconds(ttl_seconds, ttl, "ttl"),
        response_content_type=response_content_type,
        response_content_disposition=response_content_disposition,
        content_type=content_type,
    )
    return Unary("signer", "SignURL", request, _as(signer_pb2.SignedURL), timeout)


def sign_urls(
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
) -> Unary[list[signer_pb2.SignedURL]]:
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
        method=method_value(method),
        ttl_seconds=seconds(ttl_seconds, ttl, "ttl"),
        compact=compact and not uris,
    )
    return Unary(
        "signer",
        "SignURLs",
        request,
        lambda response: _common.unpack_sign_urls(keys, response),
        timeout,
    )


def create_link(
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
) -> Unary[signer_pb2.Link]:
    """A stable link to key, or (whole_prefix) a base for every key under prefix."""
    request = signer_pb2.CreateLinkRequest(
        tenant=tenant,
        mount_id=mount_id,
        key=key,
        prefix=prefix,
        whole_prefix=whole_prefix,
        methods=[method_value(m) for m in methods],
        expires_in_seconds=seconds(expires_in_seconds, expires_in, "expires_in"),
    )
    return Unary("signer", "CreateLink", request, _as(signer_pb2.Link), timeout)


def create_links(
    tenant: str,
    mount_id: str,
    keys: Sequence[str],
    *,
    methods: Sequence[str] = (),
    expires_in_seconds: int = 0,
    expires_in: timedelta | None = None,
    timeout: float | None = None,
) -> Unary[list[signer_pb2.Link]]:
    """One stable link per key, in order."""
    request = signer_pb2.CreateLinksRequest(
        tenant=tenant,
        mount_id=mount_id,
        keys=list(keys),
        methods=[method_value(m) for m in methods],
        expires_in_seconds=seconds(expires_in_seconds, expires_in, "expires_in"),
    )
    return Unary("signer", "CreateLinks", request, lambda reply: list(reply.links), timeout)


def revoke_link(
    tenant: str,
    mount_id: str,
    link_id: str,
    *,
    reason: str = "",
    timeout: float | None = None,
) -> Unary[signer_pb2.RevokeLinkResponse]:
    request = signer_pb2.RevokeLinkRequest(
        tenant=tenant, mount_id=mount_id, link_id=link_id, reason=reason
    )
    return Unary("signer", "RevokeLink", request, _as(signer_pb2.RevokeLinkResponse), timeout)


# -- Audit ---------------------------------------------------------------------------


def query_audit(
    tenant: str = "",
    *,
    action: str = "",
    principal: str = "",
    limit: int = 0,
    outcome: str = "",
    timeout: float | None = None,
) -> Stream[audit_pb2.AuditRecord]:
    request = audit_pb2.QueryAuditRequest(
        tenant=tenant, action=action, principal=principal, limit=limit, outcome=outcome
    )
    return Stream("audit", "QueryAudit", request, _as(audit_pb2.AuditRecord), timeout)


def verify_audit(
    *, full: bool = False, timeout: float | None = None
) -> Unary[audit_pb2.VerifyAuditResponse]:
    request = audit_pb2.VerifyAuditRequest(full=full)
    return Unary("audit", "VerifyAudit", request, _as(audit_pb2.VerifyAuditResponse), timeout)


def audit_key(*, timeout: float | None = None) -> Unary[audit_pb2.AuditKey]:
    """The public key audit checkpoints are signed with (pin it for offline checks)."""
    request = audit_pb2.GetAuditKeyRequest()
    return Unary("audit", "GetAuditKey", request, _as(audit_pb2.AuditKey), timeout)


def export_audit(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float | None = None,
) -> Stream[str]:
    """Archive-format lines (no newlines) for records in [since, until)."""
    request = _common.export_audit_request(since, until)
    return Stream("audit", "ExportAudit", request, lambda item: cast(str, item.line), timeout)
