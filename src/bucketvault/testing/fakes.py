"""Fakes to inject at the provider seam (no mocks of our own code).

``offline_providers`` serve every kind the real providers declare, with the real specs
(so registration parses and checks every secret exactly as in production), but ask no
cloud anything: registration is accepted once the secret parses, and mounts answer
UNIMPLEMENTED. The core's own tests use them to stay off the network.
"""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.errors import Unimplemented
from bucketvault.models import Credential, CredentialKind, Preparation, RegistrationContext
from bucketvault.providers.base import CloudProvider, CredentialHandle
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


__all__ = ["OfflineProvider", "offline_providers"]
