"""What the sync and the async client share besides their RPC methods (client._calls):
error mapping, TTL and enum conversion, sealing, the retry/deadline plan, and the
request and reply helpers more than one call uses.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc

from bucketvault import errors
from bucketvault.crypto import hpke
from bucketvault.grpc.status import error_info
from bucketvault.protoenums import number, short_name
from bucketvault.v1 import audit_pb2, common_pb2, signer_pb2, vault_pb2

# The service's answers to a blob sealed to a registration key it no longer takes.
STALE_KEY_REASONS = frozenset({"UNKNOWN_REGISTRATION_KEY", "REGISTRATION_KEY_RETIRED"})
DEFAULT_SUITE: Any = vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM
DEFAULT_TIMEOUT = 30.0
C = TypeVar("C")

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
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
}


def translate(exc: grpc.RpcError) -> errors.BucketVaultError:
    """The bucketvault error for a failed call (INTERNAL for anything unmapped).

    Works for grpc's sync errors (a grpc.Call) and grpc.aio's AioRpcError alike: both
    carry code(), details() and trailing_metadata().
    """
    is_call = callable(getattr(exc, "code", None)) and callable(
        getattr(exc, "trailing_metadata", None)
    )
    code = exc.code() if is_call else grpc.StatusCode.UNKNOWN
    reason, field, metadata = error_info(cast(grpc.Call, exc)) if is_call else ("", "", {})
    cls = _BY_CODE.get(code, errors.Internal)
    details = exc.details() if is_call else str(exc)
    error = cls(details or code.name, reason=reason or None, metadata=metadata, field=field or None)
    error.code = code
    return error


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


def open_channel(
    target: str | C,
    credentials: grpc.ChannelCredentials | None,
    tls_files: tuple[str | Path | None, str | Path | None, str | Path | None],
    secure: Callable[[str, grpc.ChannelCredentials], C],
    insecure: Callable[[str], C],
) -> tuple[C, bool]:
    """The client's channel (a given one, or one opened to target with credentials or
    the (ca, cert, key) files) and whether the client owns it, so closes it."""
    ca, cert, key = tls_files
    from_files = tls_credentials(ca=ca, cert=cert, key=key)
    if from_files is not None:
        if credentials is not None:
            raise ValueError("pass credentials or tls_* files, not both")
        credentials = from_files
    if not isinstance(target, str):
        return target, False
    return (secure(target, credentials) if credentials else insecure(target)), True


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata for token. No header without a token: an empty "Bearer "
    would be refused as malformed instead of letting the client certificate speak."""
    return (("authorization", f"Bearer {token}"),) if token else ()


# -- retries and deadlines ---------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, on UNAVAILABLE only, for idempotent calls.

    Attempt n (from 1) that fails UNAVAILABLE waits uniform(0, min(max_backoff,
    initial_backoff * multiplier ** (n - 1))) seconds before the next, at most
    max_attempts in all, and never past the call's total deadline (timeout).
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and the multiplier >= 1")


NO_RETRY = RetryPolicy(max_attempts=1)

# The RPCs retried on UNAVAILABLE: a repeat changes nothing a first success did not.
#   reads; SignURL/SignURLs (each attempt signs afresh; nothing is stored);
#   RevokeCredential (a revoked credential comes back unchanged, and a repeat finishes a
#   purge that was busy); RevokeLink (the first revocation stays);
#   the streams (ListPrefix, QueryAudit, ExportAudit) only before their first item.
# Never retried: CreateMount (a repeat fails MOUNT_NAME_TAKEN), CreateLink(s) (a repeat
# mints another link), RegisterCredential unless it has an idempotency key, and
# RebindMount: its compare-and-swap makes a repeat harmless, but when the first attempt
# committed and only the reply was lost, the repeat fails ABORTED (VERSION_MISMATCH)
# and hides the success; the caller re-reads the mount (get_mount) and decides.
# UpdateMount and DeleteMount compare and swap too, and are never retried for that reason.
IDEMPOTENT = frozenset(
    {
        "GetRegistrationKey",
        "GetAwsTrustPolicy",
        "GetCredential",
        "ListCredentials",
        "RevokeCredential",
        "GetMount",
        "ListMounts",
        "CheckMount",
        "GetOnboarding",
        "SignURL",
        "SignURLs",
        "ListPrefix",
        "RevokeLink",
        "QueryAudit",
        "VerifyAudit",
        "GetAuditKey",
        "ExportAudit",
    }
)


class Attempts:
    """The plan of one call: a total deadline shared by its attempts, and whether (and
    how long) to wait before the next one after a failure."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float | None,
        *,
        idempotent: bool,
        rng: random.Random | None = None,
    ) -> None:
        self._policy = policy if idempotent else NO_RETRY
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._rng = rng or random
        self.attempt = 0

    def timeout(self) -> float | None:
        """The deadline of the next attempt: what is left of the call's total."""
        self.attempt += 1
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def backoff(self, error: errors.BucketVaultError) -> float | None:
        """Seconds to wait before retrying after error, or None: raise it."""
        if not isinstance(error, errors.Unavailable) or self.attempt >= self._policy.max_attempts:
            return None
        p = self._policy
        delay = self._rng.uniform(
            0, min(p.max_backoff, p.initial_backoff * p.multiplier ** (self.attempt - 1))
        )
        if self._deadline is not None and time.monotonic() + delay >= self._deadline:
            return None
        return delay


def resolve_timeout(call_timeout: float | None, default: float | None) -> float | None:
    """A per-call timeout wins over the client's; None on both means no deadline."""
    return default if call_timeout is None else call_timeout


# -- conversions ---------------------------------------------------------------------


def kind_value(kind: str | int) -> Any:
    return number(common_pb2.CredentialKind, kind) if isinstance(kind, str) else kind


def method_value(method: str | int) -> Any:
    return number(common_pb2.Method, method.upper()) if isinstance(method, str) else method


def seconds(seconds_arg: int, duration: timedelta | None, name: str) -> int:
    """The whole seconds of duration when given, else seconds_arg (not both)."""
    if duration is None:
        return seconds_arg
    if seconds_arg:
        raise ValueError(f"pass {name} or {name}_seconds, not both")
    total = duration.total_seconds()
    if total < 0 or total != int(total):
        raise ValueError(f"{name} must be a whole, non-negative number of seconds")
    return int(total)


# -- sealing -------------------------------------------------------------------------


def seal(
    key: vault_pb2.RegistrationKey, tenant: str, kind: str, secret: Mapping[str, Any] | bytes
) -> vault_pb2.SealedSecret:
    plaintext = secret if isinstance(secret, bytes) else json.dumps(dict(secret)).encode()
    sealed = hpke.seal(
        hpke.Suite(short_name(vault_pb2.HpkeSuite, key.suite)),
        key.public_key,
        tenant,
        kind,
        plaintext,
    )
    return vault_pb2.SealedSecret(key_id=key.key_id, sealed=sealed)


def is_stale_key(exc: errors.BucketVaultError) -> bool:
    """The service no longer takes the registration key the secret was sealed to."""
    return isinstance(exc, errors.FailedPrecondition) and exc.reason in STALE_KEY_REASONS


# -- requests ------------------------------------------------------------------------


def register_request(
    tenant: str,
    kind: str | int,
    sealed: vault_pb2.SealedSecret,
    display_name: str,
    idempotency_key: str,
) -> vault_pb2.RegisterCredentialRequest:
    return vault_pb2.RegisterCredentialRequest(
        tenant=tenant,
        display_name=display_name,
        kind=kind_value(kind),
        sealed_secret=sealed,
        idempotency_key=idempotency_key,
    )


def location(
    bucket: str, prefix: str, region: str, endpoint: str
) -> vault_pb2.MountLocation | None:
    """A mount location, or None when no field of it is given (no move)."""
    if not (bucket or prefix or region or endpoint):
        return None
    return vault_pb2.MountLocation(bucket=bucket, prefix=prefix, region=region, endpoint=endpoint)


def unpack_sign_urls(
    keys: list[str], response: signer_pb2.SignURLsResponse
) -> list[signer_pb2.SignedURL]:
    """One SignedURL per key, in order, whether the reply came compact or not."""
    if not response.compact_urls:
        return list(response.urls)  # a server without the compact form
    headers = dict(response.required_headers)
    out = []
    for key, url in zip(keys, response.compact_urls, strict=True):
        signed = signer_pb2.SignedURL(
            url=url,
            key=key,
            method=response.method,
            expires_at=response.expires_at,
            expiry_capped_by=response.expiry_capped_by,
        )
        if headers:
            signed.required_headers.update(headers)
        out.append(signed)
    return out


def export_audit_request(
    since: datetime | None, until: datetime | None
) -> audit_pb2.ExportAuditRequest:
    request = audit_pb2.ExportAuditRequest()
    if since is not None:
        request.since.FromDatetime(since)
    if until is not None:
        request.until.FromDatetime(until)
    return request


__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT",
    "NO_RETRY",
    "Attempts",
    "RetryPolicy",
    "resolve_timeout",
    "seconds",
    "tls_credentials",
    "translate",
]
