"""The seam between the use cases and the clouds.

A CloudProvider serves one cloud family (a set of credential kinds). The app opens a
CredentialHandle per active credential from its decrypted SecretDocument and keeps it
while the credential is active: the handle is where decrypted material, cloud
sessions and derived signing keys live, and nowhere else.

Handles must be thread-safe: the gRPC server calls them from many threads.
Providers translate their SDKs' exceptions into bucketvault.errors at this boundary.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    ListRequest,
    Mount,
    Preparation,
    RegistrationContext,
    SecretDocument,
    SignedUrl,
    SignOptions,
)


class CredentialHandle(Protocol):
    def sign(self, mount: Mount, keys: Sequence[str], options: SignOptions) -> list[SignedUrl]:
        """Sign every key (already validated and confined to the mount), same order."""
        ...

    def list(
        self, mount: Mount, request: ListRequest, sign: SignOptions | None
    ) -> Iterator[ListPage]:
        """Yield pages lazily (constant memory); sign each entry's GET URL when asked."""
        ...

    def check(self, mount: Mount) -> CheckResult:
        """Verify the mount is reachable with this credential."""
        ...

    def close(self) -> None:
        """Drop cached sessions and material (credential revoked or evicted)."""
        ...


class CloudProvider(Protocol):
    name: str
    kinds: frozenset[CredentialKind]

    def prepare(self, context: RegistrationContext, secret: SecretDocument) -> Preparation:
        """Verify a new credential with the cloud before it is accepted (may be a no-op)."""
        ...

    def open(self, credential: Credential, secret: SecretDocument) -> CredentialHandle:
        """Build the handle that signs and lists with this credential."""
        ...

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Warnings that depend on the time of reading (a SAS about to expire ...)."""
        ...


__all__ = ["CloudProvider", "CredentialHandle"]
