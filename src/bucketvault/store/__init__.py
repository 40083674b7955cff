"""Persistence: the Store protocol and its backends, chosen by URL scheme."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from bucketvault.errors import InvalidArgument
from bucketvault.store.base import (
    AuditFilter,
    AuditRow,
    ServiceKeyRecord,
    Store,
    StoredCredential,
)


def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``sqlite:///abs/path[?synchronous=full|normal]``
    or ``postgresql://...``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc or not path.startswith("/") or path == "/":
            raise InvalidArgument(
                "a SQLite store URL is sqlite:///absolute/path", reason="INVALID_STORE_URL"
            )
        # Imported here so that a PostgreSQL deployment never loads the other driver.
        from bucketvault.store.sqlite import SqliteStore  # noqa: PLC0415

        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"synchronous"} or len(query.get("synchronous", ())) > 1:
            raise InvalidArgument(
                "a SQLite store URL takes only ?synchronous=full|normal",
                reason="INVALID_STORE_URL",
            )
        return SqliteStore(path, synchronous=query.get("synchronous", ["full"])[0])
    if scheme in ("postgresql", "postgres"):
        from bucketvault.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(url)
    # The URL may carry a password: name only the scheme.
    raise InvalidArgument(f"unsupported store scheme {scheme!r}", reason="INVALID_STORE_URL")


__all__ = [
    "AuditFilter",
    "AuditRow",
    "ServiceKeyRecord",
    "Store",
    "StoredCredential",
    "open_store",
]
