"""Azure Blob object URIs: ``az://account/container/blob`` and
``https://ACCOUNT.blob.core.windows.net/container/blob``. A container lives in a storage
account, so a URI reaches a mount only through a credential for that account."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from bucketvault.models import Credential
from bucketvault.providers.uris import ObjectUri

_HOST = ".blob.core.windows.net"


def parse_object_uri(uri: str) -> ObjectUri | None:
    """The account, container and blob name an Azure URI names, or None."""
    if uri.startswith("az://"):
        account, _, rest = uri[len("az://") :].partition("/")
        container, _, key = rest.partition("/")
        return ObjectUri(container, key, account.lower()) if account and container else None
    if not uri.startswith("https://"):
        return None
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if parts.port is not None or not host.endswith(_HOST) or len(host) == len(_HOST):
        return None
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    container, _, key = path.partition("/")
    if not container:
        return None
    return ObjectUri(unquote(container), unquote(key), host[: -len(_HOST)])


def serves_uri(credential: Credential, uri: ObjectUri) -> bool:
    """Whether the credential is for the URI's storage account."""
    return credential.metadata.get("account_name", "").lower() == uri.account


__all__ = ["parse_object_uri", "serves_uri"]
