"""S3 object URIs: ``s3://bucket/key`` and S3's https object URLs, virtual-hosted
(``https://bucket.s3[.region].amazonaws.com/key``) and path-style
(``https://s3[.region].amazonaws.com/bucket/key``), dualstack and legacy ``s3-region``
hosts included, China partition too."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from bucketvault.providers.uris import ObjectUri

_HOST = re.compile(
    r"^(?:(?P<bucket>.+)\.)?s3(?:[.-]dualstack)?(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?$"
)


def parse_object_uri(uri: str) -> ObjectUri | None:
    """The bucket and key an S3 URI names, or None if it is not one."""
    if uri.startswith("s3://"):
        # As the AWS CLI reads them: the key is literal (no percent-decoding).
        bucket, _, key = uri[len("s3://") :].partition("/")
        return ObjectUri(bucket, key) if bucket else None
    if not uri.startswith("https://"):
        return None
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    found = _HOST.match(host)
    if found is None or parts.port is not None:
        return None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if found.group("bucket"):
        return ObjectUri(found.group("bucket"), unquote(path))
    bucket, _, key = path.partition("/")
    return ObjectUri(unquote(bucket), unquote(key)) if bucket else None


__all__ = ["parse_object_uri"]
