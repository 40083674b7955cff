"""Thin servicers: translate the request, call the app, translate the answer.

Every use case takes (principal, *arguments, request_id), so an RPC is one row: the use
case, how its arguments come from the request, and the converter of its result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc

from bucketvault.app import App
from bucketvault.errors import InvalidArgument
from bucketvault.grpc import convert, links
from bucketvault.grpc.interceptor import current_call
from bucketvault.protoenums import short_name
from bucketvault.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

Result = TypeVar("Result")
Reply = TypeVar("Reply")
# A use case's argument after the principal: a request field by name, or built from the request.
Argument = str | Callable[[Any], object]
# The arguments of the paged listings, in the use cases' order.
_PAGE = ("tenant", "page_size", "page_token")


class _Servicer:
    def __init__(self, app: App) -> None:
        self._app = app

    def _invoke(
        self, use_case: Callable[[App], Callable[..., Any]], args: Iterable[Argument], request: Any
    ) -> Any:
        call = current_call()
        values = [getattr(request, a) if isinstance(a, str) else a(request) for a in args]
        return use_case(self._app)(call.principal, *values, call.request_id)


# A row's arguments are checked by the use case when called (the core suite drives every
# RPC): a table cannot spell each signature. The handlers are typed inside, but returned
# as Any because mypy rejects a callable class attribute in place of the stub's method.
def _unary(
    use_case: Callable[[App], Callable[..., Result]],
    *args: Argument,
    reply: Callable[[Result], Reply],
) -> Any:
    """A unary RPC handler: the use case called as the current caller, its result converted."""

    def handle(self: _Servicer, request: Any, context: Any) -> Reply:
        return reply(self._invoke(use_case, args, request))

    return handle


def _stream(
    use_case: Callable[[App], Callable[..., Iterable[Result]]],
    *args: Argument,
    reply: Callable[[Result], Reply],
) -> Any:
    """A server-streaming handler: each item the use case yields, converted as it comes."""

    def handle(self: _Servicer, request: Any, context: Any) -> Iterator[Reply]:
        for item in self._invoke(use_case, args, request):
            yield reply(item)

    return handle


def _suite(value: int) -> str:
    if value == vault_pb2.HPKE_SUITE_UNSPECIFIED:
        return short_name(vault_pb2.HpkeSuite, vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM)
    try:
        return short_name(vault_pb2.HpkeSuite, value)
    except ValueError:
        raise InvalidArgument("unknown HPKE suite", reason="INVALID_FIELD", field="suite") from None


class VaultServicer(_Servicer, vault_pb2_grpc.VaultServiceServicer):
    def GetRegistrationKey(self, request: Any, context: Any) -> vault_pb2.RegistrationKey:
        # Not a row: the key is public, so this use case takes no request id.
        key = self._app.vault.registration_key(current_call().principal, _suite(request.suite))
        return convert.registration_key_to_pb(key)

    GetAwsTrustPolicy = _unary(
        lambda app: app.vault.trust_policy, "tenant", reply=convert.trust_policy_to_pb
    )
    RegisterCredential = _unary(
        lambda app: app.vault.register, convert.register_input, reply=convert.credential_to_pb
    )
    GetCredential = _unary(
        lambda app: app.vault.get, "tenant", "credential_id", reply=convert.credential_to_pb
    )
    ListCredentials = _unary(
        lambda app: app.vault.list, *_PAGE, reply=convert.credential_page_to_pb
    )
    RevokeCredential = _unary(
        lambda app: app.vault.revoke,
        *("tenant", "credential_id", "reason"),
        reply=convert.credential_to_pb,
    )
    CreateMount = _unary(
        lambda app: app.mounts.create, convert.mount_input, reply=convert.mount_to_pb
    )
    GetMount = _unary(lambda app: app.mounts.get, "tenant", "mount_id", reply=convert.mount_to_pb)
    ListMounts = _unary(lambda app: app.mounts.list, *_PAGE, reply=convert.mount_page_to_pb)
    RebindMount = _unary(
        lambda app: app.mounts.rebind,
        *("tenant", "mount_id", "credential_id", "expected_version", convert.location_input),
        reply=convert.mount_to_pb,
    )
    CheckMount = _unary(
        lambda app: app.mounts.check,
        *("tenant", "mount_id", "origin", convert.prospect_input),
        reply=convert.check_to_pb,
    )
    UpdateMount = _unary(
        lambda app: app.mounts.update, convert.mount_update, reply=convert.mount_to_pb
    )
    DeleteMount = _unary(
        lambda app: app.mounts.delete,
        *("tenant", "mount_id", "expected_version"),
        reply=convert.mount_to_pb,
    )
    GetOnboarding = _unary(
        lambda app: app.vault.onboarding,
        *("tenant", convert.onboarding_input),
        reply=convert.onboarding_to_pb,
    )


class SignerServicer(_Servicer, signer_pb2_grpc.SignerServiceServicer):
    SignURL = _unary(
        lambda app: app.signing.sign, convert.sign_input, reply=convert.first_signed_to_pb
    )
    _sign_urls = _unary(
        lambda app: app.signing.sign, convert.sign_input, reply=convert.signed_batch_to_pb
    )
    _sign_urls_compact = _unary(
        lambda app: app.signing.sign, convert.sign_input, reply=convert.compact_batch_to_pb
    )

    def SignURLs(self, request: Any, context: Any) -> signer_pb2.SignURLsResponse:
        # The reply form is the request's choice; one call's URLs share what is sent once.
        handle = self._sign_urls_compact if request.compact else self._sign_urls
        reply: signer_pb2.SignURLsResponse = handle(request, context)
        return reply

    ListPrefix = _stream(
        lambda app: app.signing.list_prefix, convert.list_input, reply=convert.page_to_pb
    )
    CreateLink = _unary(lambda app: app.links.create, links.link_input, reply=links.link_to_pb)
    CreateLinks = _unary(
        lambda app: app.links.create_many, links.links_input, reply=links.links_to_pb
    )
    RevokeLink = _unary(
        lambda app: app.links.revoke,
        *("tenant", "mount_id", "link_id", "reason"),
        reply=links.revocation_to_pb,
    )


class AuditServicer(_Servicer, audit_pb2_grpc.AuditServiceServicer):
    QueryAudit = _stream(
        lambda app: app.audit.query, convert.audit_filter, reply=convert.audit_to_pb
    )
    VerifyAudit = _unary(lambda app: app.audit.verify, "full", reply=convert.verify_to_pb)
    ExportAudit = _stream(
        lambda app: app.audit.export,
        convert.time_field("since"),
        convert.time_field("until"),
        reply=convert.archive_line_to_pb,
    )

    def GetAuditKey(self, request: Any, context: Any) -> audit_pb2.AuditKey:
        # Not a row: the key is public, so this use case takes no request id.
        return convert.audit_key_to_pb(self._app.audit.audit_key(current_call().principal))


# (service name in the contract, how to add its servicer to a server, the servicer)
_SERVICES: tuple[tuple[str, Callable[[Any, grpc.Server], None], type[_Servicer]], ...] = (
    (
        vault_pb2.DESCRIPTOR.services_by_name["VaultService"].full_name,
        vault_pb2_grpc.add_VaultServiceServicer_to_server,
        VaultServicer,
    ),
    (
        signer_pb2.DESCRIPTOR.services_by_name["SignerService"].full_name,
        signer_pb2_grpc.add_SignerServiceServicer_to_server,
        SignerServicer,
    ),
    (
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        audit_pb2_grpc.add_AuditServiceServicer_to_server,
        AuditServicer,
    ),
)
SERVICE_NAMES = tuple(name for name, _, _ in _SERVICES)


def add_servicers(app: App, server: grpc.Server) -> None:
    """Serve the contract's three services from app on server."""
    for _, add, servicer in _SERVICES:
        add(servicer(app), server)


__all__ = ["SERVICE_NAMES", "AuditServicer", "SignerServicer", "VaultServicer", "add_servicers"]
