"""Builds the cloud providers at the composition root, one per cloud family."""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.clock import Clock
from bucketvault.models import CredentialKind
from bucketvault.providers import aws, azure, gcs
from bucketvault.providers.base import CloudProvider
from bucketvault.urlpolicy import UrlPolicy


def build_providers(
    env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy
) -> dict[CredentialKind, CloudProvider]:
    """Map every credential kind to the provider that serves it (absent = UNIMPLEMENTED)."""
    by_kind: dict[CredentialKind, CloudProvider] = {}
    for build in (aws.build, gcs.build, azure.build):
        provider = build(env, clock, url_policy)
        if provider is None:
            continue
        for kind in provider.kinds:
            by_kind[kind] = provider
    return by_kind


__all__ = ["build_providers"]
