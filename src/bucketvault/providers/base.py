"""The seam between the use cases and the clouds.

A CloudProvider serves one cloud family and declares everything about the credential
kinds it serves (``kinds``: schema, the one parser, metadata, see providers/kinds.py).
The core holds no per-kind code: it unseals, asks the kind's spec to parse, stores, and
hands the parsed secret back to the provider to verify (``prepare``) and to use
(``open``).

``open`` returns a CredentialHandle, kept while the credential is active: the handle is
where decrypted material, cloud sessions and derived signing keys live, and nowhere
else. Rules that hold for every cloud (key checks, the expiry cap, the listed-key rule,
page sizes) are applied by the core around the handle, never inside it.

Handles must be thread-safe: the gRPC server calls them from many threads.
Providers translate their SDKs' exceptions into bucketvault.errors at this boundary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    ListRequest,
    Mount,
    Onboarding,
    Preparation,
    RegistrationContext,
    SignOptions,
)
from bucketvault.providers.kinds import KindSpec, ParsedSecret

# Why a URL lives shorter than asked: the credential's own end (an assumed-role session
# or a user-delegation key) or a customer SAS it carries.
SESSION_EXPIRY = "SESSION_EXPIRY"
SAS_EXPIRY = "SAS_EXPIRY"


@dataclass(frozen=True)
class SignedBatch:
    """URLs for a batch of keys (same order) and the headers every one of them needs."""

    urls: Sequence[str]
    required_headers: Mapping[str, str] = field(default_factory=dict)


class BatchSigner(Protocol):
    """Signs with one snapshot of a credential (one session, one delegation key ...)."""

    @property
    def valid_until(self) -> datetime | None:
        """When URLs signed with this snapshot stop working (None: not before the URL)."""
        ...

    @property
    def limit_reason(self) -> str:
        """What valid_until is the end of.

        SESSION_EXPIRY: temporary credentials; a URL may be given any life up to it.
        SAS_EXPIRY: the URL carries the credential's own token (a customer SAS), so it
        lives exactly until valid_until, whatever life was asked for.
        """
        ...

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        """Sign every key exactly as told: options carry the final signing time and expiry."""
        ...


class CredentialHandle(Protocol):
    def signer(self, mount: Mount, options: SignOptions) -> BatchSigner:
        """A signer for this mount; raises if the credential cannot sign these options now."""
        ...

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """Yield the cloud's pages lazily (constant memory), without URLs."""
        ...

    def check(self, mount: Mount) -> CheckResult:
        """Verify the mount is reachable with this credential."""
        ...

    def close(self) -> None:
        """Drop cached sessions and material (credential revoked or evicted)."""
        ...


class CloudProvider(Protocol):
    @property
    def name(self) -> str:
        """The family: mounts may be rebound only between credentials of one family."""
        ...

    @property
    def kinds(self) -> Mapping[CredentialKind, KindSpec]:
        """Every kind this provider serves, with its schema and parser."""
        ...

    @property
    def max_url_seconds(self) -> int:
        """The longest URL lifetime the cloud's signature scheme accepts."""
        ...

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """Verify a new credential with the cloud before it is accepted (may be a no-op)."""
        ...

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        """Build the handle that signs and lists with this credential."""
        ...

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Warnings that depend on the time of reading (a SAS about to expire ...)."""
        ...


@dataclass(frozen=True)
class TrustPolicy:
    """Registration help for role-based kinds: what the customer pastes into their cloud."""

    external_id: str
    service_principal: str
    policy_json: str


@runtime_checkable
class MountAdmission(Protocol):
    """Implemented by providers that can tell, before a mount is stored, that a credential
    could never serve it (AWS: its session policy does not fit STS's limits).

    The core asks when a mount is created or rebound, so that such a mount fails then,
    with a reason, and never at signing time. It is asked with the credential's record
    only: admission opens no handle and decrypts nothing.
    """

    def admit_mount(self, credential: Credential, mount: Mount) -> None:
        """Raise a bucketvault error if credential cannot serve mount."""
        ...


@runtime_checkable
class TrustPolicySource(Protocol):
    """Implemented by providers whose customers must trust the service's own identity."""

    def trust_policy(self, external_id: str) -> TrustPolicy:
        """The policy naming the service's principal and the tenant's ExternalId."""
        ...


@runtime_checkable
class OnboardingSource(Protocol):
    """Implemented by providers with kinds a customer must set up on their side first."""

    def onboarding(self, kind: CredentialKind, tenant: str) -> Onboarding | None:
        """How the tenant grants the service access for kind (None: nothing to set up)."""
        ...


__all__ = [
    "SAS_EXPIRY",
    "SESSION_EXPIRY",
    "BatchSigner",
    "CloudProvider",
    "MountAdmission",
    "OnboardingSource",
    "CredentialHandle",
    "SignedBatch",
    "TrustPolicy",
    "TrustPolicySource",
]
