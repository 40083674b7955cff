"""Per-blob service SAS and user-delegation SAS, staged for speed.

The string to sign and the query string are byte-for-byte what azure-storage-blob's
``generate_blob_sas`` produces for the same inputs (tests pin that). Everything that
does not depend on the blob name is computed once per batch (``SasTemplate``), so
signing one blob is a string join, one HMAC-SHA256 and one ``quote``.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

# The REST version the SDK installed here signs with (azure-storage-blob 12.31's
# X_MS_VERSION); a test fails if the SDK moves, because the fields signed differ by version.
SAS_VERSION = "2026-10-06"

# Permissions in the order the service requires ("racwdxytmei").
READ = "r"
CREATE_WRITE = "cw"
LIST = "l"
# What each sp letter grants (Azure "Create a service SAS", permissions for a container).
PERMISSION_NAMES = {
    "r": "read",
    "a": "add",
    "c": "create",
    "w": "write",
    "d": "delete",
    "x": "delete version",
    "y": "permanent delete",
    "l": "list",
    "t": "tags",
    "f": "find by tags",
    "m": "move",
    "e": "execute",
    "i": "set immutability policy",
    "o": "ownership",
    "p": "permissions",
}


def sas_time(when: datetime) -> str:
    """A datetime as the SAS wants it: UTC, seconds, 'Z' (the SDK's own format)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _q(value: str) -> str:
    # The SDK encodes SAS query values with urllib's default quote (safe='/').
    return quote(value)


# Characters quote(name, safe='~/') leaves alone; most keys have nothing else.
_PATH_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9_.\-~/]").search


def encode_blob_name(blob: str) -> str:
    """quote(blob, safe='~/') (the SDK's URL encoding), skipped when it would be a no-op."""
    return quote(blob, safe="~/") if _PATH_NEEDS_QUOTING(blob) else blob


def blob_path(container: str, blob: str) -> str:
    """'/container/blob' encoded once, as the SDK builds a BlobClient URL."""
    return f"/{quote(container)}/{encode_blob_name(blob)}"


@dataclass(frozen=True)
class DelegationKey:
    """A user delegation key as Get User Delegation Key returned it."""

    signed_oid: str
    signed_tid: str
    signed_start: str
    signed_expiry: str
    signed_service: str
    signed_version: str
    value: str = field(repr=False)
    signed_delegated_user_tid: str = ""


@dataclass(frozen=True)
class SasRequest:
    """What a batch of per-blob SAS tokens shares."""

    account_name: str
    container: str
    permission: str
    expiry: datetime
    start: datetime | None = None
    content_type: str = ""  # rsct: response Content-Type override
    content_disposition: str = ""  # rscd: response Content-Disposition override


class SasTemplate:
    """The blob-independent parts of one SAS batch: sign(blob) -> query string."""

    __slots__ = ("_head", "_key", "_query", "_tail")

    def __init__(self, key: bytes, head: str, tail: str, query: str) -> None:
        self._key = key
        self._head = head
        self._tail = tail
        self._query = query

    def __repr__(self) -> str:
        return "SasTemplate(<hidden>)"

    def string_to_sign(self, blob: str) -> str:
        """The exact string the service recomputes (the SDK-equality tests pin it)."""
        return f"{self._head}{blob}{self._tail}"

    def token(self, blob: str) -> str:
        """The SAS query string (no leading '?') for one blob of the batch."""
        # Signs what string_to_sign() returns, so its tests cover the hot path too.
        digest = hmac.digest(self._key, self.string_to_sign(blob).encode(), "sha256")
        # quote() of base64 (safe='/') only ever touches '+' and '='.
        sig = base64.b64encode(digest).decode("ascii")
        return self._query + sig.replace("+", "%2B").replace("=", "%3D")


def _base_query(req: SasRequest, start: str, expiry: str) -> list[str]:
    # Insertion order of the SDK's query_dict: st, se, sp, sv, sr, rscd, rsct.
    parts = []
    if start:
        parts.append("st=" + _q(start))
    parts.append("se=" + _q(expiry))
    parts.append("sp=" + _q(req.permission))
    parts.append("sv=" + SAS_VERSION)
    parts.append("sr=b")
    if req.content_disposition:
        parts.append("rscd=" + _q(req.content_disposition))
    if req.content_type:
        parts.append("rsct=" + _q(req.content_type))
    return parts


def service_sas(account_key: bytes, req: SasRequest) -> SasTemplate:
    """A service SAS (sr=b) template signed with the account key."""
    start = sas_time(req.start) if req.start else ""
    expiry = sas_time(req.expiry)
    head = f"{req.permission}\n{start}\n{expiry}\n/blob/{req.account_name}/{req.container}/"
    # si, sip, spr, sv, sr, snapshot time, ses, rscc, rscd, rsce, rscl, rsct
    tail = f"\n\n\n\n{SAS_VERSION}\nb\n\n\n\n{req.content_disposition}\n\n\n{req.content_type}"
    query = "&".join(_base_query(req, start, expiry)) + "&sig="
    return SasTemplate(account_key, head, tail, query)


def user_delegation_sas(key: DelegationKey, req: SasRequest) -> SasTemplate:
    """A user-delegation SAS (sr=b) template signed with a user delegation key."""
    start = sas_time(req.start) if req.start else ""
    expiry = sas_time(req.expiry)
    head = f"{req.permission}\n{start}\n{expiry}\n/blob/{req.account_name}/{req.container}/"
    # skoid, sktid, skt, ske, sks, skv, saoid, suoid, scid, skdutid, sduoid, sip, spr, sv,
    # sr, snapshot time, ses, srh, srq, rscc, rscd, rsce, rscl, rsct
    tail = (
        f"\n{key.signed_oid}\n{key.signed_tid}\n{key.signed_start}\n{key.signed_expiry}"
        f"\n{key.signed_service}\n{key.signed_version}\n\n\n\n{key.signed_delegated_user_tid}"
        f"\n\n\n\n{SAS_VERSION}\nb\n\n\n\n\n\n{req.content_disposition}\n\n\n{req.content_type}"
    )
    query = _base_query(req, start, expiry)
    for name, value in (
        ("skoid", key.signed_oid),
        ("sktid", key.signed_tid),
        ("skt", key.signed_start),
        ("ske", key.signed_expiry),
        ("sks", key.signed_service),
        ("skv", key.signed_version),
        ("skdutid", key.signed_delegated_user_tid),
    ):
        if value:
            query.append(f"{name}={_q(value)}")
    return SasTemplate(base64.b64decode(key.value), head, tail, "&".join(query) + "&sig=")


__all__ = [
    "CREATE_WRITE",
    "READ",
    "SAS_VERSION",
    "DelegationKey",
    "SasRequest",
    "SasTemplate",
    "blob_path",
    "encode_blob_name",
    "sas_time",
    "service_sas",
    "user_delegation_sas",
]
