"""GCS object URIs: ``gs://bucket/key``, ``https://storage.googleapis.com/bucket/key``
(and the authenticated-browser ``storage.cloud.google.com`` form), and the
virtual-hosted ``https://bucket.storage.googleapis.com/key``."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from bucketvault.providers.uris import ObjectUri

_PATH_HOSTS = frozenset({"storage.googleapis.com", "storage.cloud.google.com"})
_HOSTED = ".storage.googleapis.com"


def parse_object_uri(uri: str) -> ObjectUri | None:
    """The bucket and key a GCS URI names, or None if it is not one."""
    if uri.startswith("gs://"):
        # As gsutil reads them: the key is literal.
        bucket, _, key = uri[len("gs://") :].partition("/")
        return ObjectUri(bucket, key) if bucket else None
    if not uri.startswith("https://"):
        return None
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        return None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if host in _PATH_HOSTS:
        bucket, _, key = path.partition("/")
        return ObjectUri(unquote(bucket), unquote(key)) if bucket else None
    if host.endswith(_HOSTED) and len(host) > len(_HOSTED):
        return ObjectUri(host[: -len(_HOSTED)], unquote(path))
    return None


__all__ = ["parse_object_uri"]
