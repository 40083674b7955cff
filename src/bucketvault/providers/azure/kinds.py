"""The Azure kinds: a customer SAS, an account's shared key, a service principal, and
delegated access (the service's own Entra app, consented in the customer's tenant).

The account URL and the SAS token are understood here and only here: the account a URL
names, and what a SAS grants and until when, are read once, the same way at
registration and when a stored credential is opened.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from bucketvault.errors import FailedPrecondition
from bucketvault.models import CredentialKind
from bucketvault.providers.kinds import Field, KindSpec, ParseContext, SecretFields, bad_field

AZURE_SAS = CredentialKind("AZURE_SAS")
AZURE_SHARED_KEY = CredentialKind("AZURE_SHARED_KEY")
AZURE_SERVICE_PRINCIPAL = CredentialKind("AZURE_SERVICE_PRINCIPAL")
AZURE_DELEGATED = CredentialKind("AZURE_DELEGATED")

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_GUIDISH = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?Z?)?$")
# Azure's public and sovereign blob endpoints: the account is the first host label.
_AZURE_SUFFIXES = (
    ".core.windows.net",
    ".core.chinacloudapi.cn",
    ".core.usgovcloudapi.net",
)
_SAS = "sas_token"


def iso(when: datetime) -> str:
    """A UTC time as SAS metadata shows it."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_sas_time(value: str, *, field: str) -> datetime:
    """ISO 8601 as SAS tokens write it (date, minutes or seconds, 'Z') -> aware UTC."""
    match = _TIME.match(value)
    if match:
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        try:
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
        except ValueError:
            pass
    raise bad_field(_SAS, f"has a malformed {field} time", "INVALID_SAS")


@dataclass(frozen=True)
class SasToken:
    """The signed fields of a SAS token; the token itself never reaches a repr."""

    token: str = field(repr=False)
    version: str
    permissions: str
    expiry: datetime
    start: datetime | None
    # "service" (sr=c) or "account" (srt present)
    kind: str
    resource: str
    services: str

    def allows(self, letters: str) -> bool:
        """True if any of the permission letters is granted."""
        return any(letter in self.permissions for letter in letters)


def parse_sas_token(raw: str) -> SasToken:
    """A container SAS (sr=c) or an account SAS covering blob objects, that grants read."""
    token = raw.strip().lstrip("?")
    parsed = parse_qs(token, keep_blank_values=True)
    # A repeated parameter (two sig=) is ambiguous: which one Azure honours is not ours to
    # guess, and the token is appended to every URL as given.
    for name, values in parsed.items():
        if len(values) > 1:
            raise bad_field(_SAS, f"repeats the {name!r} parameter", "INVALID_SAS")
    params = {k: v[0] for k, v in parsed.items()}

    def need(name: str) -> str:
        value = params.get(name, "")
        if not value:
            raise bad_field(_SAS, f"has no {name!r} parameter", "INVALID_SAS")
        return value

    need("sig")
    version = need("sv")
    permissions = need("sp")
    expiry = parse_sas_time(need("se"), field="expiry (se)")
    start = parse_sas_time(params["st"], field="start (st)") if params.get("st") else None
    if "srt" in params:
        kind, resource, services = "account", params["srt"], params.get("ss", "")
        if "b" not in services:
            raise bad_field(
                _SAS,
                "is an account SAS not covering the blob service (ss)",
                "SAS_RESOURCE_UNSUPPORTED",
            )
        if "o" not in resource:
            raise bad_field(
                _SAS,
                "is an account SAS not covering objects (srt needs 'o')",
                "SAS_RESOURCE_UNSUPPORTED",
            )
    else:
        kind, resource, services = "service", need("sr"), "b"
        if resource != "c":
            # A blob-level SAS grants one blob only; mounts need a container.
            raise bad_field(
                _SAS, "must be a container SAS (sr=c) or an account SAS", "SAS_RESOURCE_UNSUPPORTED"
            )
    if "r" not in permissions:
        raise bad_field(_SAS, "does not grant read ('r' in sp)", "SAS_PERMISSION_MISSING")
    return SasToken(token, version, permissions, expiry, start, kind, resource, services)


def _is_ip_or_local(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def account_name_from_url(account_url: str) -> str:
    """The account an account URL names, or an error saying why it names none.

    'https://acct.blob.core.windows.net' -> 'acct'. Emulators and Azure Stack are
    path-style: 'http://127.0.0.1:10000/devstoreaccount1' -> 'devstoreaccount1'. A path
    after an Azure host is a container or blob pasted by mistake: refused, because URLs
    signed under it would point somewhere else than the mount says.
    """
    parts = urlsplit(account_url)
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if _is_ip_or_local(host):
        if len(segments) != 1:
            raise bad_field(
                "account_url",
                "must name exactly one account in its path (path-style endpoint)",
                "INVALID_ACCOUNT_URL",
            )
        name = segments[0]
    else:
        if segments:
            raise bad_field(
                "account_url",
                "must be the account's blob endpoint, without a container or path",
                "INVALID_ACCOUNT_URL",
            )
        name = host.split(".", 1)[0]
    if not _ACCOUNT.match(name):
        raise bad_field("account_url", "does not name a storage account", "INVALID_ACCOUNT_URL")
    return name


@dataclass(frozen=True)
class Account:
    """A storage account's blob endpoint and name."""

    url: str
    name: str


def _account(f: SecretFields, context: ParseContext) -> Account:
    url = context.url_policy.check_endpoint(f["account_url"], field="secret.account_url")
    return Account(url.rstrip("/"), account_name_from_url(url))


@dataclass(frozen=True)
class SasSecret:
    """A customer's container or account SAS."""

    account: Account
    sas: SasToken

    def metadata(self) -> Mapping[str, str]:
        """The account and what the SAS grants until when."""
        sas = self.sas
        return {
            "account_url": self.account.url,
            "account_name": self.account.name,
            "sas_version": sas.version,
            "sas_expiry": iso(sas.expiry),
            "sas_start": iso(sas.start) if sas.start else "",
            "sas_permissions": sas.permissions,
            "sas_resource": sas.resource,
            "sas_kind": sas.kind,
        }


@dataclass(frozen=True)
class SharedKeySecret:
    """An account key: service SAS are signed with it locally."""

    account: Account
    key: bytes = field(repr=False)

    def metadata(self) -> Mapping[str, str]:
        """The account."""
        return {"account_url": self.account.url, "account_name": self.account.name}


@dataclass(frozen=True)
class ServicePrincipalSecret:
    """An Entra application with a client secret: user-delegation SAS."""

    account: Account
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)

    def metadata(self) -> Mapping[str, str]:
        """The account and the application."""
        return {
            "account_url": self.account.url,
            "account_name": self.account.name,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
        }


@dataclass(frozen=True)
class DelegatedSecret:
    """Where the service's own app signs for a customer: an account in an Entra tenant.

    Nothing here is secret (the app's credential is the service's, configured once); it
    is still sealed and stored like every credential so that one path serves all kinds.
    """

    account: Account
    tenant_id: str

    def metadata(self) -> Mapping[str, str]:
        """The account and the customer's tenant."""
        return {
            "account_url": self.account.url,
            "account_name": self.account.name,
            "tenant_id": self.tenant_id,
        }


def parse_sas(f: SecretFields, context: ParseContext) -> SasSecret:
    """The account URL and the SAS token."""
    return SasSecret(_account(f, context), parse_sas_token(f[_SAS]))


def admit_sas(secret: SasSecret, now: datetime) -> tuple[str, ...]:
    """Refuse an expired SAS; warn about what it will not allow."""
    sas = secret.sas
    if now >= sas.expiry:
        raise FailedPrecondition(
            "the SAS token has expired", reason="SAS_EXPIRED", field="secret.sas_token"
        )
    warnings = []
    if not sas.allows("l"):
        warnings.append("the SAS lacks list permission ('l'): ListPrefix will be refused")
    if not sas.allows("cw"):
        warnings.append("the SAS allows no writes ('c'/'w'): PUT URLs will be refused")
    if sas.start is not None and sas.start > now:
        warnings.append(f"the SAS is not valid before {sas.start.isoformat()}")
    return tuple(warnings)


def parse_shared_key(f: SecretFields, context: ParseContext) -> SharedKeySecret:
    """The account URL, its name (which must agree with the URL) and a base64 key."""
    account = _account(f, context)
    host = (urlsplit(account.url).hostname or "").lower()
    if f["account_name"] != account.name and (
        _is_ip_or_local(host) or host.endswith(_AZURE_SUFFIXES)
    ):
        raise bad_field(
            "account_name", "is not the account the account_url names", "ACCOUNT_NAME_MISMATCH"
        )
    try:
        key = base64.b64decode(f["account_key"], validate=True)
    except (binascii.Error, ValueError):
        key = b""
    # Canonical base64 only: the decoder forgives extra padding, and a key that is not
    # what Azure issued is a paste error better refused than silently repaired.
    if base64.b64encode(key).decode("ascii") != f["account_key"]:
        key = b""
    if len(key) < 16:
        raise bad_field("account_key", "is not a base64 storage account key")
    # A custom domain does not name the account: the given name is what signs.
    return SharedKeySecret(Account(account.url, f["account_name"]), key)


def _bearer_account(f: SecretFields, context: ParseContext) -> Account:
    """An account reached with Entra bearer tokens: https only, whatever the URL policy.

    azure-storage-blob refuses a token credential over http with a ValueError (which
    reached callers as INTERNAL): say so at registration instead.
    """
    account = _account(f, context)
    if urlsplit(account.url).scheme.lower() != "https":
        raise bad_field(
            "account_url",
            "must be https: Entra bearer tokens are never sent over http",
            "BEARER_NEEDS_HTTPS",
        )
    return account


def parse_service_principal(f: SecretFields, context: ParseContext) -> ServicePrincipalSecret:
    """The account URL and the application's tenant, client id and secret."""
    return ServicePrincipalSecret(
        _bearer_account(f, context), f["tenant_id"], f["client_id"], f["client_secret"]
    )


def parse_delegated(f: SecretFields, context: ParseContext) -> DelegatedSecret:
    """The account URL (the one account parser) and the customer's tenant id."""
    return DelegatedSecret(_bearer_account(f, context), f["tenant_id"])


_ACCOUNT_URL = Field("account_url", "the account's blob endpoint (https)", max_len=2048)

KINDS: Mapping[CredentialKind, KindSpec] = {
    AZURE_SAS: KindSpec(
        AZURE_SAS,
        "A container SAS (sr=c) or account SAS granting read, appended to every URL",
        (_ACCOUNT_URL, Field(_SAS, "the SAS query string", secret=True, max_len=8192)),
        parse_sas,
        admit=admit_sas,
    ),
    AZURE_SHARED_KEY: KindSpec(
        AZURE_SHARED_KEY,
        "A storage account key: per-object service SAS signed by bucketvault",
        (
            _ACCOUNT_URL,
            Field("account_name", "the storage account name", pattern=_ACCOUNT),
            Field("account_key", "the base64 account key", secret=True, max_len=256),
        ),
        parse_shared_key,
    ),
    AZURE_SERVICE_PRINCIPAL: KindSpec(
        AZURE_SERVICE_PRINCIPAL,
        "An Entra service principal: per-object user-delegation SAS",
        (
            _ACCOUNT_URL,
            Field("tenant_id", "the Entra tenant id", pattern=_GUIDISH),
            Field("client_id", "the application (client) id", pattern=_GUIDISH),
            Field("client_secret", "the client secret", secret=True, max_len=1024),
        ),
        parse_service_principal,
    ),
    AZURE_DELEGATED: KindSpec(
        AZURE_DELEGATED,
        "Delegated access: the service's own Entra app, consented in the customer's tenant "
        "and granted roles on the account, signs per-object user-delegation SAS",
        (_ACCOUNT_URL, Field("tenant_id", "the customer's Entra tenant id", pattern=_GUIDISH)),
        parse_delegated,
    ),
}

__all__ = [
    "AZURE_DELEGATED",
    "AZURE_SAS",
    "AZURE_SERVICE_PRINCIPAL",
    "AZURE_SHARED_KEY",
    "KINDS",
    "Account",
    "DelegatedSecret",
    "SasSecret",
    "SasToken",
    "ServicePrincipalSecret",
    "SharedKeySecret",
    "account_name_from_url",
    "iso",
    "parse_sas_time",
    "parse_sas_token",
]
