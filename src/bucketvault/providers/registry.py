"""The providers the service runs with, and what they declare, for the core to consult.

The composition root builds every provider found in this package (each subpackage with
a ``build`` function), so a new cloud is its own folder plus its kinds' names in the wire
enum; nothing here or in the core names a cloud or a kind.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from bucketvault import providers as _package
from bucketvault.clock import Clock
from bucketvault.errors import Unimplemented
from bucketvault.models import Credential, CredentialKind, Onboarding
from bucketvault.providers.base import CloudProvider, OnboardingSource, TrustPolicySource
from bucketvault.providers.kinds import KindSpec
from bucketvault.providers.uris import ObjectUri, uri_scheme
from bucketvault.urlpolicy import UrlPolicy

Build = Callable[[Mapping[str, str], Clock, UrlPolicy], CloudProvider | None]


class ProviderRegistry:
    """Kind -> spec and provider; one provider per kind."""

    def __init__(self, providers: Iterable[CloudProvider]) -> None:
        self._providers = tuple(providers)
        self._by_kind: dict[CredentialKind, CloudProvider] = {}
        for provider in self._providers:
            for kind in provider.kinds:
                if kind in self._by_kind:
                    raise ValueError(f"{kind.value} is served by two providers")
                self._by_kind[kind] = provider

    @property
    def providers(self) -> tuple[CloudProvider, ...]:
        """Every provider, in the order given."""
        return self._providers

    def provider(self, kind: CredentialKind) -> CloudProvider:
        """The provider serving kind (UNIMPLEMENTED when none is configured)."""
        provider = self._by_kind.get(kind)
        if provider is None:
            raise Unimplemented(
                f"{kind.value} credentials are not served by this deployment",
                reason="PROVIDER_UNAVAILABLE",
            )
        return provider

    def spec(self, kind: CredentialKind) -> KindSpec:
        """The declaration of kind."""
        return self.provider(kind).kinds[kind]

    def family(self, kind: CredentialKind) -> str:
        """The cloud family of kind ("" if no provider serves it)."""
        provider = self._by_kind.get(kind)
        return provider.name if provider is not None else ""

    def object_uri(self, uri: str) -> list[tuple[str, ObjectUri]]:
        """(family, what it names) for every family whose URI reading accepts uri."""
        out: list[tuple[str, ObjectUri]] = []
        for family in dict.fromkeys(p.name for p in self._providers):
            scheme = uri_scheme(family)
            target = scheme.parse(uri) if scheme is not None else None
            if target is not None:
                out.append((family, target))
        return out

    def serves_uri(self, credential: Credential, family: str, target: ObjectUri) -> bool:
        """Whether credential belongs to family and can reach the bucket target names."""
        if self.family(credential.kind) != family:
            return False
        scheme = uri_scheme(family)
        return scheme is not None and scheme.serves(credential, target)

    def onboarding(self, kind: CredentialKind, tenant: str) -> Onboarding | None:
        """How a tenant sets up kind on its side, if the kind's provider says."""
        provider = self.provider(kind)
        if isinstance(provider, OnboardingSource):
            return provider.onboarding(kind, tenant)
        return None

    def trust_policy_source(self) -> TrustPolicySource | None:
        """The provider whose customers must trust our own identity, if any."""
        for provider in self._providers:
            if isinstance(provider, TrustPolicySource):
                return provider
        return None


def provider_builders() -> list[Build]:
    """The ``build`` of every provider folder in this package, in name order."""
    builders: list[Build] = []
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        build = getattr(module, "build", None)
        if callable(build):
            builders.append(cast(Build, build))
    return builders


def build_providers(
    env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy
) -> ProviderRegistry:
    """Every provider that builds in this environment (None = not configured)."""
    built = (build(env, clock, url_policy) for build in provider_builders())
    return ProviderRegistry(p for p in built if p is not None)


__all__ = ["ProviderRegistry", "build_providers", "provider_builders"]
