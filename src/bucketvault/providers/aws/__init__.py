"""The aws provider: AWS_ROLE via STS AssumeRole and S3_ACCESS_KEY, SigV4 presigning."""

from __future__ import annotations

from collections.abc import Mapping

from bucketvault.clock import Clock
from bucketvault.providers.aws.provider import AwsHandle, AwsProvider
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.urlpolicy import UrlPolicy


def build(env: Mapping[str, str], clock: Clock, url_policy: UrlPolicy) -> AwsProvider:
    """Build the provider from the environment mapping the service was started with."""
    return AwsProvider(AwsSettings.from_env(env), clock, url_policy)


__all__ = ["AwsHandle", "AwsProvider", "AwsSettings", "build"]
