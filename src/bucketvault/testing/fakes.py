"""Fakes to inject at the provider seam (no mocks of our own code).

``offline_providers`` serve every kind the real providers declare, with the real specs
(so registration parses and checks every secret exactly as in production), but ask no
cloud anything: registration is accepted once the secret parses, and mounts answer
UNIMPLEMENTED. The core's own tests use them to stay off the network.

``local_providers`` are the same with handles that answer in-process: URLs on
``https://signed.invalid`` (an HMAC of what was signed, so no two differ), a fixed
listing, and CheckMount AVAILABLE; one of them issues trust policies. Tests that need
calls to succeed end to end (the authorization matrix) use them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from bucketvault.errors import Unimplemented
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListEntry,
    ListPage,
    ListRequest,
    Mount,
    MountState,
    Onboarding,
    Preparation,
    RegistrationContext,
    SignOptions,
)
from bucketvault.providers.base import CloudProvider, CredentialHandle, SignedBatch, TrustPolicy
from bucketvault.providers.kinds import KindSpec, ParsedSecret
from bucketvault.providers.registry import provider_builders


class OfflineProvider:
    """A cloud family's kinds without its cloud."""

    def __init__(
        self, name: str, kinds: Mapping[CredentialKind, KindSpec], max_url_seconds: int
    ) -> None:
        self.name = name
        self.kinds = kinds
        self.max_url_seconds = max_url_seconds

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """Accept: there is no cloud to ask."""
        return Preparation()

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        """There is no cloud to sign for."""
        raise Unimplemented(
            f"signing with {credential.kind.value} credentials is not available offline",
            reason="PROVIDER_UNAVAILABLE",
        )

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Nothing time-dependent."""
        return ()


@dataclass(frozen=True)
class _LocalSigner:
    credential_id: str
    valid_until: datetime | None = None
    limit_reason: str = ""

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        """Fake URLs that say what was signed."""
        stamp = f"{options.method.value}|{options.signed_at.isoformat()}|{options.expires_in}"
        urls = []
        for key in keys:
            mac = hmac.new(self.credential_id.encode(), f"{stamp}|{key}".encode(), hashlib.sha256)
            urls.append(
                f"https://signed.invalid/{quote(key)}?m={options.method.value}"
                f"&e={options.expires_in}&s={mac.hexdigest()[:16]}"
            )
        return SignedBatch(urls)


@dataclass(frozen=True)
class LocalHandle:
    """Signs and lists in-process."""

    credential_id: str
    keys: tuple[str, ...]

    def signer(self, mount: Mount, options: SignOptions) -> _LocalSigner:
        """A signer that never expires."""
        return _LocalSigner(self.credential_id)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """The fixed keys under the asked prefix, page_size at a time; the page token is
        the offset of the next page (a token that is not one raises, as a cloud would)."""
        entries = tuple(
            ListEntry(mount.prefix + k, 1, "etag", None)
            for k in self.keys
            if (mount.prefix + k).startswith(request.prefix)
        )
        start = int(request.page_token or "0")
        while True:
            end = start + request.page_size
            more = end < len(entries)
            yield ListPage(entries[start:end], (), str(end) if more else "")
            if not more:
                return
            start = end

    def check(self, mount: Mount) -> CheckResult:
        """Always usable."""
        return CheckResult(MountState.AVAILABLE, "OK", "")

    def close(self) -> None:
        """Nothing to drop."""


class LocalProvider(OfflineProvider):
    """A cloud family's kinds with in-process handles."""

    def __init__(
        self,
        name: str,
        kinds: Mapping[CredentialKind, KindSpec],
        max_url_seconds: int,
        keys: tuple[str, ...],
    ) -> None:
        super().__init__(name, kinds, max_url_seconds)
        self._keys = keys

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        """A handle that signs and lists in-process."""
        return LocalHandle(credential.credential_id, self._keys)


class LocalTrustingProvider(LocalProvider):
    """A LocalProvider that also issues trust policies (as the AWS provider does)."""

    def trust_policy(self, external_id: str) -> TrustPolicy:
        """A policy naming a made-up service principal."""
        return TrustPolicy(external_id, "arn:aws:iam::000000000000:role/local", "{}")

    def onboarding(self, kind: CredentialKind, tenant: str) -> Onboarding | None:
        """Made-up steps for every kind of this family (the matrix needs one that answers)."""
        return Onboarding(kind, "arn:aws:iam::000000000000:role/local", ("trust it",))


def local_providers(keys: Sequence[str] = ("a.jpg",)) -> list[CloudProvider]:
    """One in-process provider per real provider folder; keys are what every mount lists
    (relative to the mount's prefix)."""
    out: list[CloudProvider] = []
    for i, offline in enumerate(offline_providers()):
        assert isinstance(offline, OfflineProvider)
        kind = LocalTrustingProvider if i == 0 else LocalProvider
        out.append(kind(offline.name, offline.kinds, offline.max_url_seconds, tuple(keys)))
    return out


def offline_providers() -> list[CloudProvider]:
    """One offline stand-in per real provider folder, with that folder's kinds."""
    from bucketvault.clock import SystemClock  # noqa: PLC0415
    from bucketvault.urlpolicy import UrlPolicy  # noqa: PLC0415

    out: list[CloudProvider] = []
    for build in provider_builders():
        real = build({}, SystemClock(), UrlPolicy())
        if real is not None:
            out.append(OfflineProvider(real.name, real.kinds, real.max_url_seconds))
    return out


__all__ = [
    "LocalHandle",
    "LocalProvider",
    "LocalTrustingProvider",
    "OfflineProvider",
    "local_providers",
    "offline_providers",
]
