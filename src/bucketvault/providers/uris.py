"""Object URIs: which bucket and key a URI names, as each cloud family spells them.

A provider folder may hold a ``uris`` module with ``parse_object_uri(uri) -> ObjectUri |
None`` (None: not a URI of this family) and, optionally, ``serves_uri(credential, uri)
-> bool`` (whether a credential of the family can reach the URI's bucket at all: Azure's
containers live in a storage account the credential names). The core asks every
provider's family and never reads a URI itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from bucketvault.models import Credential

# Longer than any URL a cloud accepts: refused before any parsing.
MAX_URI_LENGTH = 4096


@dataclass(frozen=True)
class ObjectUri:
    """What a URI names: the bucket (container), the full object key and, for clouds
    whose buckets live in an account, the account."""

    bucket: str
    key: str
    account: str = ""


Parse = Callable[[str], ObjectUri | None]
Serves = Callable[[Credential, ObjectUri], bool]


def _always(credential: Credential, uri: ObjectUri) -> bool:
    return True


@dataclass(frozen=True)
class UriScheme:
    """One family's URI reading."""

    parse: Parse
    serves: Serves = _always


@cache
def uri_scheme(family: str) -> UriScheme | None:
    """The family's URI reading (its folder's ``uris`` module), or None without one."""
    if not family.isidentifier():
        return None
    try:
        module = importlib.import_module(f"bucketvault.providers.{family}.uris")
    except ModuleNotFoundError:
        return None
    parse = getattr(module, "parse_object_uri", None)
    if not callable(parse):
        return None
    serves = getattr(module, "serves_uri", None)
    return UriScheme(parse, serves if callable(serves) else _always)


__all__ = ["MAX_URI_LENGTH", "ObjectUri", "UriScheme", "uri_scheme"]
