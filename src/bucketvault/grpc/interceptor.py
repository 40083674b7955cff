"""The one interceptor: request id, authentication, the call's audit record, and
error -> status mapping.

Every RPC but health and reflection leaves exactly one audit record, written here when
the use case did not write it: the failure record of a call that raised, or the record of
a call that returned without one. A record that cannot be committed turns the answer into
UNAVAILABLE AUDIT_UNAVAILABLE (no record, no answer). A failure after the call's record
was committed (a listing that breaks off after its first pages) adds a follow-up record.

Anything that is not a BucketVaultError becomes INTERNAL with a generic message: an
unexpected exception's text may quote input, and input may be a secret.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from bucketvault.app.common import Recorder
from bucketvault.audit.draft import AuditDraft, drafting
from bucketvault.auth.authn import TokenAuthenticator
from bucketvault.errors import BucketVaultError, Internal
from bucketvault.grpc.auditing import draft_for
from bucketvault.grpc.limits import CallLimiter
from bucketvault.grpc.status import to_grpc_status
from bucketvault.grpc.tls import peer_identities
from bucketvault.models import Principal

log = logging.getLogger("bucketvault.rpc")

# Health and reflection answer without a token (load balancers and grpcurl need them).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class CallContext:
    principal: Principal
    request_id: str


_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar("bucketvault_call")


def current_call() -> CallContext:
    """The authenticated caller of the RPC being served (set by the interceptor)."""
    return _current.get()


def _request_id(metadata: dict[str, str]) -> str:
    given = metadata.get("x-request-id", "")
    # Accept a caller's id only if it is short and plain: it is echoed into logs and audit.
    if given and len(given) <= 64 and all(c.isalnum() or c in "-_." for c in given):
        return given
    return secrets.token_hex(8)


class CallHook(Protocol):
    def observe(
        self, method: str, draft: AuditDraft, context: grpc.ServicerContext
    ) -> AbstractContextManager[None]:
        """Around the whole of one call (metrics, span, its log line); grpc/observing.py."""
        ...


class _NoHook:
    def observe(
        self, method: str, draft: AuditDraft, context: grpc.ServicerContext
    ) -> AbstractContextManager[None]:
        return nullcontext()


class ServiceInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: TokenAuthenticator,
        recorder: Recorder,
        *,
        client_certs: bool = False,
        hook: CallHook | None = None,
        limits: CallLimiter | None = None,
    ) -> None:
        self._authn = authenticator
        # Per-principal rate and concurrency limits (grpc/limits.py), after authentication.
        self._limits = limits
        self._recorder = recorder
        self._hook: CallHook = hook or _NoHook()
        # Only a listener that requires and verifies client certificates may name callers
        # by them; anywhere else a certificate identity is not one we checked.
        self._client_certs = client_certs

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in the contract

    def _enter(
        self, context: grpc.ServicerContext, metadata: dict[str, str], request_id: str
    ) -> CallContext:
        context.send_initial_metadata((("x-request-id", request_id),))
        try:
            peer_ids = peer_identities(context.auth_context()) if self._client_certs else ()
            principal = self._authn.authenticate(metadata.get("authorization"), peer_ids)
        except BucketVaultError as exc:
            exc.metadata.setdefault("request_id", request_id)
            raise
        return CallContext(principal, request_id)

    def _fail(
        self, method: str, draft: AuditDraft, exc: Exception, context: grpc.ServicerContext
    ) -> None:
        request_id = draft.request_id
        if isinstance(exc, BucketVaultError):
            error = exc
            log.info(
                "rpc failed method=%s code=%s reason=%s request_id=%s",
                method,
                error.code.name,
                error.reason,
                request_id,
            )
        else:
            # Type only: the exception's text is not trusted to be free of secrets.
            log.error(
                "rpc internal error method=%s type=%s request_id=%s",
                method,
                type(exc).__name__,
                request_id,
            )
            error = Internal(f"internal error (request id {request_id})")
        try:
            self._recorder.failure(draft, error)
        except BucketVaultError as audit_error:
            # No record, no answer: not even the error, which can tell what exists.
            log.error("rpc failure not recorded method=%s request_id=%s", method, request_id)
            error = audit_error
        error.metadata.setdefault("request_id", request_id)
        context.abort_with_status(to_grpc_status(error))

    @contextmanager
    def _serving(
        self, method: str, request: Any, context: grpc.ServicerContext
    ) -> Iterator[AuditDraft]:
        """The caller and the audit draft set for the body of one RPC, its record written
        if the body did not write it, and its failure turned into a status.

        One place for unary and streaming RPCs: a stream's body is its whole iteration."""
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        draft = draft_for(method, request, _request_id(metadata), context.peer())
        with self._hook.observe(method, draft, context), drafting(draft):
            try:
                call = self._enter(context, metadata, draft.request_id)
                draft.principal = call.principal.name
                token = _current.set(call)
                try:
                    limited = self._limits.admit(call.principal) if self._limits else nullcontext()
                    with limited:
                        yield draft
                finally:
                    _current.reset(token)
                self._recorder.closing(draft)
            except Exception as exc:
                # Servicers never abort themselves; abort_with_status raises from here.
                self._fail(method, draft, exc, context)
                raise

    def _unary(self, method: str, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with self._serving(method, request, context):
                return behavior(request, context)

        return handle

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._serving(method, request, context) as draft:
                for reply in behavior(request, context):
                    yield reply
                    draft.sent += 1

        return handle


__all__ = ["CallContext", "CallHook", "ServiceInterceptor", "current_call"]
