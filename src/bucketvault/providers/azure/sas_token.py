"""Parsing a customer's SAS token: what it allows and until when."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from bucketvault.errors import InvalidArgument

_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?Z?)?$")


def parse_sas_time(value: str, *, field: str) -> datetime:
    """ISO 8601 as SAS tokens write it (date, minutes or seconds, 'Z') -> aware UTC."""
    match = _TIME.match(value)
    if not match:
        raise InvalidArgument(
            f"the SAS {field} is not an ISO 8601 UTC time", reason="INVALID_SAS", field="sas_token"
        )
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        raise InvalidArgument(
            f"the SAS {field} is not a valid time", reason="INVALID_SAS", field="sas_token"
        ) from None


@dataclass(frozen=True)
class SasToken:
    """The signed fields of a SAS token; the token itself never reaches a repr."""

    token: str = field(repr=False)
    version: str
    permissions: str
    expiry: datetime
    start: datetime | None
    # "service" (sr=c or b) or "account" (srt present)
    kind: str
    resource: str
    services: str

    def allows(self, letters: str) -> bool:
        """True if any of the permission letters is granted."""
        return any(letter in self.permissions for letter in letters)


def parse_sas_token(raw: str) -> SasToken:
    """Parse and sanity-check a container or account SAS (no leading '?')."""
    token = raw.strip().lstrip("?")
    params = {k: v[0] for k, v in parse_qs(token, keep_blank_values=True).items()}

    def need(name: str) -> str:
        value = params.get(name, "")
        if not value:
            raise InvalidArgument(
                f"the SAS token has no '{name}' field", reason="INVALID_SAS", field="sas_token"
            )
        return value

    need("sig")
    version = need("sv")
    permissions = need("sp")
    expiry = parse_sas_time(need("se"), field="expiry")
    start = parse_sas_time(params["st"], field="start") if params.get("st") else None
    if "srt" in params:
        kind, resource = "account", params["srt"]
        services = params.get("ss", "")
        if "b" not in services:
            raise InvalidArgument(
                "the account SAS does not cover the blob service (ss)",
                reason="SAS_RESOURCE_UNSUPPORTED",
                field="sas_token",
            )
        if "o" not in resource:
            raise InvalidArgument(
                "the account SAS does not cover objects (srt needs 'o')",
                reason="SAS_RESOURCE_UNSUPPORTED",
                field="sas_token",
            )
    else:
        kind, resource, services = "service", need("sr"), "b"
        if resource != "c":
            # A blob-level SAS grants one blob only; mounts need a container.
            raise InvalidArgument(
                "the SAS must be a container SAS (sr=c) or an account SAS",
                reason="SAS_RESOURCE_UNSUPPORTED",
                field="sas_token",
            )
    return SasToken(token, version, permissions, expiry, start, kind, resource, services)


__all__ = ["SasToken", "parse_sas_time", "parse_sas_token"]
