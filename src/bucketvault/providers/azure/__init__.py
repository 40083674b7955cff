"""The Azure Blob provider: customer SAS, shared key (service SAS), service principal (UD SAS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from bucketvault.clock import Clock
from bucketvault.providers.azure.provider import AzureProvider
from bucketvault.providers.azure.settings import AzureConfig
from bucketvault.providers.base import CloudProvider
from bucketvault.urlpolicy import UrlPolicy


def build(env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy) -> CloudProvider | None:
    """Build the provider from the env mapping the composition root passes."""
    return AzureProvider(replace(AzureConfig.from_env(env), url_policy=url_policy), clock)


__all__ = ["AzureConfig", "AzureProvider", "build"]
