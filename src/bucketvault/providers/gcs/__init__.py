"""The GCS provider: V4 signed URLs (service-account RSA keys, HMAC keys, impersonated
service accounts) and listing."""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.clock import Clock
from bucketvault.providers.base import CloudProvider
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.downscope import StsClient
from bucketvault.providers.gcs.iamcredentials import IamCredentials
from bucketvault.providers.gcs.identity import GcpIdentityConfig, GoogleIdentity
from bucketvault.providers.gcs.provider import GcsHandle, GcsProvider
from bucketvault.providers.gcs.settings import GcsSettings
from bucketvault.urlpolicy import UrlPolicy


def build(env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy) -> CloudProvider | None:
    """Build the GCS provider; the service's own Google identity is read from env but
    loaded only when a keyless credential first needs it."""
    config = GcpIdentityConfig.from_env(env, url_policy)
    identity = GoogleIdentity(config, clock, url_policy)
    egress = Egress(url_policy)
    iam = IamCredentials(config.iam_endpoint, identity, egress)
    settings = GcsSettings.from_env(env)
    return GcsProvider(clock, url_policy, iam, StsClient(config.sts_endpoint, egress), settings)


__all__ = ["GcsHandle", "GcsProvider", "build"]
