"""Frozen value types shared by every layer.

Nothing here holds secret material: decrypted secrets live only in the parsed
secrets of the providers (providers/<cloud>/kinds.py), in ``repr=False`` fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CredentialKind:
    """A kind of customer credential, by its wire name.

    Deliberately not an enum here: each cloud provider declares the kinds it serves
    (providers/<cloud>/kinds.py), and the wire enum in protos/.../common.proto is the one
    list of names, so adding a kind touches its provider folder and that enum only.
    """

    value: str

    def __str__(self) -> str:
        return self.value


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
class Grant:
    """What a principal's roles reach within one tenant (a policy entry's "grants").

    None means "no limit of this kind": every mount of the tenant, the whole mount, the
    methods the mount allows, the mount's maximum lifetime.
    """

    # A tenant name, or "*" for every tenant.
    tenant: str
    # Mount ids or names.
    mounts: frozenset[str] | None = None
    # Key prefixes relative to the mount's own prefix.
    prefixes: tuple[str, ...] | None = None
    methods: frozenset[Method] | None = None
    max_ttl_seconds: int | None = None


@dataclass(frozen=True)
class Limits:
    """A principal's call limits (a policy entry's "limits"); None takes the server's
    default (BUCKETVAULT_LIMIT_*), 0 means no limit of that kind."""

    # Calls a second, refilling a bucket of `burst` calls.
    rps: float | None = None
    burst: int | None = None
    # Calls in flight at once (a stream counts until its last reply).
    concurrency: int | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    roles: frozenset[Role]
    # Tenant names, or {"*"} for every tenant.
    tenants: frozenset[str]
    # Empty: an entry without grants, whose roles reach every mount of each of `tenants`.
    grants: tuple[Grant, ...] = ()
    # Overrides of the server's per-principal call limits.
    limits: Limits = Limits()
    _by_tenant: Mapping[str, tuple[Grant, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # Precomputed once per policy load: the hot path looks a tenant up, nothing more.
        scope = self.scope()
        index = {
            tenant: tuple(g for g in scope if g.tenant in (tenant, ALL_TENANTS))
            for tenant in {g.tenant for g in scope}
        }
        object.__setattr__(self, "_by_tenant", index)

    def scope(self) -> tuple[Grant, ...]:
        """Every grant, an entry without grants reading as one unlimited grant per tenant."""
        return self.grants or tuple(Grant(t) for t in sorted(self.tenants))

    def grants_for(self, tenant: str) -> tuple[Grant, ...]:
        """The grants that apply to tenant ("*" asks for grants on every tenant)."""
        found = self._by_tenant.get(tenant)
        if found is None:
            found = self._by_tenant.get(ALL_TENANTS, ())
        return found

    def may_act_for(self, tenant: str) -> bool:
        return bool(self.grants_for(tenant))


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
    # A URL that carries the credential itself (a customer's own SAS) lives as long as
    # the credential, whatever TTL is asked. Such URLs are refused when they would outlive
    # max_ttl_seconds, unless the mount's owner accepts that here.
    allow_credential_lifetime: bool = False
    # Cache-stable URLs (providers/rules.py): repeats within a window are byte-identical.
    cache_stable_urls: bool = True


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
class Overrides:
    """Response header overrides a GET/HEAD URL carries, or the Content-Type a PUT sends."""

    response_content_type: str = ""
    response_content_disposition: str = ""
    # For PUT: the Content-Type the client will send; signed and returned as required.
    content_type: str = ""

    def for_get(self) -> Overrides:
        """The overrides a listing's GET URLs keep (no PUT Content-Type)."""
        return Overrides(self.response_content_type, self.response_content_disposition)


NO_OVERRIDES = Overrides()


@dataclass(frozen=True)
class SignOptions:
    """What to sign, apart from the object keys.

    The provider signs exactly this: the signing time (whole seconds) and the lifetime
    are final by the time a provider sees them (providers/rules.py caps them).
    """

    method: Method
    expires_in: int
    signed_at: datetime
    # Why expires_in is below what the caller asked for, if it is ("MOUNT_MAX_TTL",
    # "PROVIDER_MAX", "SESSION_EXPIRY", "SAS_EXPIRY").
    capped_by: str = ""
    overrides: Overrides = NO_OVERRIDES
    # The principal the URLs are signed for: providers attribute cloud sessions to it
    # (AWS SourceIdentity); "" when the service acts for itself.
    caller: str = ""
    # When the call was made, if signed_at was floored to a stable window before it: the
    # credential's validity is checked against this, not against the signing time.
    asked_at: datetime | None = None


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
    # The principal listing (see SignOptions.caller).
    caller: str = ""


@dataclass(frozen=True)
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    url: str = ""
    # Why a listing that asked for URLs has none for this key (the reason SignURL would
    # give, e.g. INVALID_KEY for a stored name with a '..' segment); "" when signed.
    url_error: str = ""


@dataclass(frozen=True)
class ListPage:
    entries: tuple[ListEntry, ...]
    common_prefixes: tuple[str, ...]
    next_page_token: str


@dataclass(frozen=True)
class CorsVerdict:
    """Whether browsers on one origin may fetch a mount's objects (CheckMount's CORS probe)."""

    origin: str
    allowed: bool
    detail: str
    # The CORS rule to add, in the cloud's own form; "" when allowed.
    suggested_rule: str = ""


@dataclass(frozen=True)
class CheckResult:
    state: MountState
    reason: str
    detail: str
    # What works but should not be so (a credential granting more than the mount needs).
    warnings: tuple[str, ...] = ()
    # What the cloud itself enforces for this mount (a session policy's rights), or
    # "none: ..." when only bucketvault's checks confine it; "" when not reported.
    scope: str = ""
    # One preflight verdict per browser origin probed (configured or asked for).
    cors: tuple[CorsVerdict, ...] = ()


@dataclass(frozen=True)
class Onboarding:
    """What a customer does so that the service may use a kind: whom to grant, and how.

    Keyless kinds (impersonation, delegated access) hold no customer secret: the customer
    grants the service's own cloud identity access instead.
    """

    kind: CredentialKind
    # The service's own identity the customer grants access to (a Google service account,
    # an Entra application id, an AWS principal ARN).
    identity: str
    # What to do, in order, in words an operator can follow.
    steps: tuple[str, ...]
    # Named links or snippets to use (a consent URL, a gcloud command ...).
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistrationContext:
    """What a provider may need to verify a credential at registration."""

    tenant: str
    credential_id: str
    kind: CredentialKind
    # The registering principal (AWS: the proof session's SourceIdentity).
    caller: str = ""


@dataclass(frozen=True)
class Preparation:
    """What a provider learned by verifying a credential with its cloud."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


__all__ = [
    "ALL_TENANTS",
    "CheckResult",
    "CorsVerdict",
    "Credential",
    "CredentialKind",
    "CredentialState",
    "Grant",
    "Limits",
    "ListEntry",
    "ListPage",
    "ListRequest",
    "Method",
    "Mount",
    "MountPolicy",
    "MountState",
    "NO_OVERRIDES",
    "Onboarding",
    "Overrides",
    "Preparation",
    "Principal",
    "RegistrationContext",
    "Role",
    "SignOptions",
    "SignedUrl",
]
