"""Frozen value types shared by every layer.

Nothing here holds secret material except ``SecretDocument``, whose fields are
``repr=False`` so that a traceback or a log line never prints them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class CredentialKind(enum.Enum):
    AWS_ROLE = "AWS_ROLE"
    S3_ACCESS_KEY = "S3_ACCESS_KEY"
    GCS_SERVICE_ACCOUNT = "GCS_SERVICE_ACCOUNT"
    GCS_HMAC = "GCS_HMAC"
    AZURE_SAS = "AZURE_SAS"
    AZURE_SHARED_KEY = "AZURE_SHARED_KEY"
    AZURE_SERVICE_PRINCIPAL = "AZURE_SERVICE_PRINCIPAL"


class CredentialState(enum.Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


class Method(enum.Enum):
    GET = "GET"
    HEAD = "HEAD"
    PUT = "PUT"


class Role(enum.Enum):
    SIGNER = "signer"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class MountState(enum.Enum):
    """Outcome of CheckMount."""

    AVAILABLE = "AVAILABLE"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    MISCONFIGURED = "MISCONFIGURED"


ALL_TENANTS = "*"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    roles: frozenset[Role]
    # Tenant names, or {"*"} for every tenant.
    tenants: frozenset[str]

    def may_act_for(self, tenant: str) -> bool:
        return ALL_TENANTS in self.tenants or tenant in self.tenants


@dataclass(frozen=True)
class SecretDocument:
    """The decrypted credential JSON. Lives only in provider objects; never printed."""

    kind: CredentialKind
    fields: Mapping[str, Any] = field(repr=False)

    def str(self, name: str) -> str:
        value = self.fields.get(name, "")
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Credential:
    """A registered credential's non-secret record."""

    credential_id: str
    tenant: str
    display_name: str
    kind: CredentialKind
    state: CredentialState
    fingerprint: str
    metadata: Mapping[str, str]
    warnings: tuple[str, ...]
    created_at: datetime
    created_by: str
    record_version: int = 1
    revoked_at: datetime | None = None
    revoked_by: str = ""
    revoke_reason: str = ""


@dataclass(frozen=True)
class MountPolicy:
    max_ttl_seconds: int
    allowed_methods: frozenset[Method]


@dataclass(frozen=True)
class Mount:
    mount_id: str
    tenant: str
    name: str
    bucket: str
    prefix: str
    region: str
    endpoint: str
    credential_id: str
    policy: MountPolicy
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SignOptions:
    """What to sign, apart from the object keys. The provider adds the signing time."""

    method: Method
    # Lifetime already capped by the request and the mount policy; the provider may
    # cap it further (session or SAS expiry, provider maximum) and says so.
    expires_in: int
    # Why expires_in is below what the caller asked for, if it is ("MOUNT_MAX_TTL").
    capped_by: str = ""
    response_content_type: str = ""
    response_content_disposition: str = ""
    # For PUT: the Content-Type the client will send; signed and returned as required.
    content_type: str = ""


@dataclass(frozen=True)
class SignedUrl:
    key: str
    url: str
    method: Method
    expires_at: datetime
    required_headers: Mapping[str, str] = field(default_factory=dict)
    # "", "MOUNT_MAX_TTL", "SESSION_EXPIRY", "SAS_EXPIRY", "PROVIDER_MAX"
    expiry_capped_by: str = ""


@dataclass(frozen=True)
class ListRequest:
    # Absolute prefix, already confined to the mount by the caller of the provider.
    prefix: str
    delimiter: str
    page_size: int
    page_token: str


@dataclass(frozen=True)
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    url: str = ""


@dataclass(frozen=True)
class ListPage:
    entries: tuple[ListEntry, ...]
    common_prefixes: tuple[str, ...]
    next_page_token: str


@dataclass(frozen=True)
class CheckResult:
    state: MountState
    reason: str
    detail: str


@dataclass(frozen=True)
class RegistrationContext:
    """What a provider may need to verify a credential at registration."""

    tenant: str
    credential_id: str
    kind: CredentialKind
    # The tenant's ExternalId, issued by bucketvault (AWS roles only use it).
    external_id: str


@dataclass(frozen=True)
class Preparation:
    """What a provider learned by verifying a credential with its cloud."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


__all__ = [
    "ALL_TENANTS",
    "CheckResult",
    "Credential",
    "CredentialKind",
    "CredentialState",
    "ListEntry",
    "ListPage",
    "ListRequest",
    "Method",
    "Mount",
    "MountPolicy",
    "MountState",
    "Preparation",
    "Principal",
    "RegistrationContext",
    "Role",
    "SecretDocument",
    "SignOptions",
    "SignedUrl",
]
