"""The aws provider (not implemented yet: its mounts answer UNIMPLEMENTED)."""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.clock import Clock
from bucketvault.providers.base import CloudProvider
from bucketvault.urlpolicy import UrlPolicy


def build(env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy) -> CloudProvider | None:
    """Build the provider from the process environment, or None while it does not exist."""
    return None
