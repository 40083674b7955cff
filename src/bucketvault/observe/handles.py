"""Credential handles that count the URLs they sign, by cloud family, and report the
expiry of credentials that expire by themselves (a customer SAS: its signers say
SAS_EXPIRY), so that an operator hears of it before the tenant's URLs stop working."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bucketvault.models import CheckResult, ListPage, ListRequest, Mount, SignOptions
from bucketvault.observe.metrics import NO_METRICS, Metrics
from bucketvault.providers.base import SAS_EXPIRY, BatchSigner, CredentialHandle, SignedBatch
from bucketvault.providers.cors import CorsSource, CorsTarget


class _CountingSigner:
    def __init__(self, inner: BatchSigner, family: str, metrics: Metrics) -> None:
        self._inner = inner
        self._family = family
        self._metrics = metrics

    @property
    def valid_until(self) -> datetime | None:
        return self._inner.valid_until

    @property
    def limit_reason(self) -> str:
        return self._inner.limit_reason

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        batch = self._inner.sign(keys, options)
        self._metrics.urls_signed(self._family, len(batch.urls))
        return batch


class CountingHandle:
    """A handle whose signers count what they sign (SignURL, SignURLs and listings)."""

    def __init__(self, inner: CredentialHandle, family: str, metrics: Metrics) -> None:
        self._inner = inner
        self._family = family
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"CountingHandle({self._inner!r})"

    def signer(self, mount: Mount, options: SignOptions) -> BatchSigner:
        """The inner signer, counted."""
        inner = self._inner.signer(mount, options)
        if inner.limit_reason == SAS_EXPIRY and inner.valid_until is not None:
            self._metrics.credential_expiry(self, self._family, inner.valid_until.timestamp())
        return _CountingSigner(inner, self._family, self._metrics)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """The inner listing."""
        return self._inner.list(mount, request)

    def check(self, mount: Mount) -> CheckResult:
        """The inner check."""
        return self._inner.check(mount)

    def cors_target(self, mount: Mount) -> CorsTarget | None:
        """The inner handle's browser target, if it has one."""
        inner = self._inner
        return inner.cors_target(mount) if isinstance(inner, CorsSource) else None

    def close(self) -> None:
        """Close the inner handle."""
        self._metrics.credential_expiry(self, self._family, None)
        self._inner.close()


def counting(handle: CredentialHandle, family: str, metrics: Metrics) -> CredentialHandle:
    """handle, counted when metrics are on (unchanged when they are off)."""
    if metrics is NO_METRICS:
        return handle
    return CountingHandle(handle, family, metrics)


__all__ = ["CountingHandle", "counting"]
