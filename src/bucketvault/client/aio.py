"""AsyncBucketVaultClient: BucketVaultClient's methods on grpc.aio, as coroutines.

Same names, arguments, defaults, errors, deadlines and retries as the sync client
(tests/sdk/test_surface.py pins it); listings and streams are async iterators. Both
take their RPC methods from client._calls, never building a request on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import grpc
import grpc.aio

from bucketvault import errors
from bucketvault.client import _calls, _common
from bucketvault.client._common import (
    DEFAULT_SUITE,
    DEFAULT_TIMEOUT,
    IDEMPOTENT,
    Attempts,
    RetryPolicy,
    resolve_timeout,
    seconds,
    translate,
)
from bucketvault.v1 import (
    audit_pb2_grpc,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


def _unary(
    spec: Callable[P, _calls.Unary[R]],
) -> Callable[Concatenate[AsyncBucketVaultClient, P], Awaitable[R]]:
    """A coroutine method that sends the call spec builds and returns its unpacked reply."""

    async def method(self: AsyncBucketVaultClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(spec(*args, **kwargs))

    return _calls.method_of(spec, method)


def _listed(
    spec: Callable[P, _calls.Stream[R] | _calls.Pages[R]],
) -> Callable[Concatenate[AsyncBucketVaultClient, P], AsyncIterator[R]]:
    """An async-iterator method over the items of the stream or listing spec builds."""

    async def method(
        self: AsyncBucketVaultClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[R]:
        async for item in self._each(spec(*args, **kwargs)):
            yield item

    return _calls.method_of(spec, method)


class AsyncBucketVaultClient:
    """BucketVaultClient on grpc.aio: ``async with AsyncBucketVaultClient(...) as c``.

    Create it inside the event loop that uses it (grpc.aio channels belong to a loop).
    """

    def __init__(
        self,
        target: str | grpc.aio.Channel,
        token: str = "",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._channel, self._owns_channel = _common.open_channel(
            target,
            credentials,
            (tls_ca, tls_cert, tls_key),
            grpc.aio.secure_channel,
            grpc.aio.insecure_channel,
        )
        self._metadata = _common.bearer(token)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self.vault = vault_pb2_grpc.VaultServiceStub(self._channel)
        self.signer = signer_pb2_grpc.SignerServiceStub(self._channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(self._channel)
        self._reg_keys: dict[int, vault_pb2.RegistrationKey] = {}

    def __repr__(self) -> str:
        return "AsyncBucketVaultClient()"

    async def close(self) -> None:
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncBucketVaultClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self,
        stub: Any,
        name: str,
        request: Any,
        returns: type[T],
        timeout: float | None,
        *,
        idempotent: bool | None = None,
    ) -> T:
        rpc = getattr(stub, name)
        plan = Attempts(
            self._retry,
            resolve_timeout(timeout, self._timeout),
            idempotent=name in IDEMPOTENT if idempotent is None else idempotent,
        )
        while True:
            try:
                return cast(T, await rpc(request, metadata=self._metadata, timeout=plan.timeout()))
            except grpc.RpcError as exc:
                error = translate(exc)
            delay = plan.backoff(error)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    async def _stream(
        self, stub: Any, name: str, request: Any, timeout: float | None
    ) -> AsyncIterator[Any]:
        plan = Attempts(self._retry, timeout, idempotent=name in IDEMPOTENT)
        started = False
        while True:
            try:
                async for item in getattr(stub, name)(
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
            await asyncio.sleep(delay)

    async def _run(self, call: _calls.Unary[R]) -> R:
        reply = await self._call(
            getattr(self, call.service),
            call.name,
            call.request,
            object,
            call.timeout,
            idempotent=call.idempotent,
        )
        return call.unpack(reply)

    async def _each(self, call: _calls.Stream[R] | _calls.Pages[R]) -> AsyncIterator[R]:
        """As BucketVaultClient._each, on grpc.aio."""
        if isinstance(call, _calls.Stream):
            async for item in self._stream(
                getattr(self, call.service), call.name, call.request, call.timeout
            ):
                yield call.unpack(item)
            return
        request = call.request
        while True:
            page: Any = await self._call(self.vault, call.name, request, object, call.timeout)
            for item in call.items(page):
                yield item
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # -- Vault ------------------------------------------------------------------
    async def registration_key(
        self, suite: Any = DEFAULT_SUITE, *, timeout: float | None = None
    ) -> vault_pb2.RegistrationKey:
        if suite not in self._reg_keys:
            self._reg_keys[suite] = await self._call(
                self.vault,
                "GetRegistrationKey",
                vault_pb2.GetRegistrationKeyRequest(suite=suite),
                vault_pb2.RegistrationKey,
                timeout,
            )
        return self._reg_keys[suite]

    async def seal(
        self,
        tenant: str,
        kind: str,
        secret: Mapping[str, Any] | bytes,
        *,
        suite: Any = DEFAULT_SUITE,
        timeout: float | None = None,
    ) -> vault_pb2.SealedSecret:
        """Seal a credential for this service, tenant and kind (HPKE, locally)."""
        key = await self.registration_key(suite, timeout=timeout)
        return _common.seal(key, tenant, kind, secret)

    async def register_credential(
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
                return await self.register_sealed(
                    tenant,
                    kind,
                    await self.seal(tenant, kind, secret, suite=suite, timeout=timeout),
                    display_name=display_name,
                    idempotency_key=idempotency_key,
                    timeout=timeout,
                )
            except errors.FailedPrecondition as exc:
                if attempt == 2 or not _common.is_stale_key(exc):
                    raise
                self._reg_keys.pop(suite, None)
        raise AssertionError("unreachable")

    register_sealed = _unary(_calls.register_sealed)
    get_credential = _unary(_calls.get_credential)
    list_credentials = _listed(_calls.list_credentials)
    revoke_credential = _unary(_calls.revoke_credential)
    trust_policy = _unary(_calls.trust_policy)
    onboarding = _unary(_calls.onboarding)
    create_mount = _unary(_calls.create_mount)
    get_mount = _unary(_calls.get_mount)
    list_mounts = _listed(_calls.list_mounts)
    rebind_mount = _unary(_calls.rebind_mount)
    update_mount = _unary(_calls.update_mount)
    delete_mount = _unary(_calls.delete_mount)
    check_mount = _unary(_calls.check_mount)
    check_new_mount = _unary(_calls.check_new_mount)

    # -- Signer -----------------------------------------------------------------
    sign_url = _unary(_calls.sign_url)
    sign_urls = _unary(_calls.sign_urls)

    async def list_prefix(
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
    ) -> AsyncIterator[signer_pb2.ListPrefixPage]:
        async for item in self._stream(
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
        ):
            yield item

    create_link = _unary(_calls.create_link)
    create_links = _unary(_calls.create_links)
    revoke_link = _unary(_calls.revoke_link)

    # -- Audit ------------------------------------------------------------------
    query_audit = _listed(_calls.query_audit)
    verify_audit = _unary(_calls.verify_audit)
    audit_key = _unary(_calls.audit_key)
    export_audit = _listed(_calls.export_audit)


__all__ = ["AsyncBucketVaultClient"]
