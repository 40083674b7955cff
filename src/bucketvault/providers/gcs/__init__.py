"""The GCS provider: V4 signed URLs (service-account RSA keys, HMAC keys) and listing."""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.clock import Clock
from bucketvault.providers.base import CloudProvider
from bucketvault.providers.gcs.provider import GcsHandle, GcsProvider
from bucketvault.urlpolicy import UrlPolicy


def build(env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy) -> CloudProvider | None:
    """Build the GCS provider; it needs no configuration beyond the URL policy."""
    return GcsProvider(clock, url_policy)


__all__ = ["GcsHandle", "GcsProvider", "build"]
