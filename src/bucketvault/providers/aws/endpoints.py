"""Where an S3 object's URL points: the same host and path botocore would choose.

On AWS, botocore presigns with the global endpoint and virtual-hosted style when the
bucket is a plain DNS label, and path-style on the regional endpoint otherwise. Custom
endpoints (S3-compatible stores, emulators) are always path-style.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bucketvault.providers.aws.sigv4 import PresignTarget
from bucketvault.providers.signing import encode_path

# botocore.endpoint_provider.VALID_HOST_LABEL_RE / IPV4_RE, restated.
_HOST_LABEL = re.compile(r"^(?!-)[a-zA-Z\d-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _partition(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) for a region name."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def _virtual_hostable(bucket: str) -> bool:
    return (
        len(bucket) >= 3
        and bucket.lower() == bucket
        and _IPV4.match(bucket) is None
        and _HOST_LABEL.match(bucket) is not None
    )


def aws_target(bucket: str, region: str) -> PresignTarget:
    """The URL layout botocore's presigner produces on AWS for this bucket and region."""
    partition, suffix = _partition(region)
    if partition == "aws" and _HOST_LABEL.match(bucket):
        # botocore presigns these against the global endpoint (region stays in the scope).
        host_region = ""
    else:
        host_region = "" if region == "us-east-1" else region
    s3_host = f"s3.{host_region}.{suffix}" if host_region else f"s3.{suffix}"
    if _virtual_hostable(bucket):
        host = f"{bucket}.{s3_host}"
        return PresignTarget(f"https://{host}", host, "/", region)
    return PresignTarget(f"https://{s3_host}", s3_host, f"/{encode_path(bucket)}/", region)


def custom_target(endpoint: str, bucket: str, region: str) -> PresignTarget:
    """Path-style layout under a custom endpoint URL, as botocore builds it."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    if ":" in hostname:
        hostname = f"[{hostname}]"
    # The signed host header drops the port when it is the scheme's default.
    host = hostname if parts.port in (None, _DEFAULT_PORTS.get(scheme)) else parts.netloc
    base_path = parts.path.rstrip("/")
    return PresignTarget(
        f"{scheme}://{parts.netloc}", host, f"{base_path}/{encode_path(bucket)}/", region
    )


__all__ = ["aws_target", "custom_target"]
