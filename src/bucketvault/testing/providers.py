"""Driving one cloud provider directly, as the core drives it, for the provider suites.

``Ruled(provider, clock)`` gives a provider test the view the service has: secrets are
parsed by the kind's own spec (``RawSecret`` is the JSON a caller would seal), and a
handle's signing and listing go through the rules every cloud passes (providers/rules.py:
expiry cap, listed-key rule). Nothing is faked: it is the same code path minus gRPC,
sealing and the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bucketvault.clock import Clock
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    ListRequest,
    Method,
    Mount,
    Overrides,
    Preparation,
    RegistrationContext,
    SignedUrl,
    SignOptions,
)
from bucketvault.providers import rules
from bucketvault.providers.base import CloudProvider, CredentialHandle
from bucketvault.providers.kinds import ParseContext, ParsedSecret
from bucketvault.urlpolicy import UrlPolicy

# Emulators listen on http://127.0.0.1: the provider suites allow that explicitly.
INSECURE = UrlPolicy(allow_insecure=True)


@dataclass(frozen=True)
class RawSecret:
    """A credential's JSON as a caller would seal it."""

    kind: CredentialKind
    fields: Mapping[str, Any] = field(repr=False)


class UrlRequest:
    """What a caller asks for, before the service picks the signing time and caps.

    ``UrlRequest(Method.GET, 600, response_content_type="image/png")``: the overrides
    are keyword arguments, as in the SDK.
    """

    def __init__(
        self,
        method: Method,
        expires_in: int,
        capped_by: str = "",
        *,
        caller: str = "",
        **overrides: str,
    ) -> None:
        self.method = method
        self.expires_in = expires_in
        self.capped_by = capped_by
        self.caller = caller
        self.overrides = Overrides(**overrides)

    def at(self, when: datetime) -> SignOptions:
        """The options signed at `when` (whole seconds, as the service signs)."""
        return SignOptions(
            self.method,
            self.expires_in,
            when.replace(microsecond=0),
            self.capped_by,
            self.overrides,
            self.caller,
        )


class RuledHandle:
    """A provider's handle seen through the rules every cloud passes."""

    def __init__(self, provider: CloudProvider, handle: CredentialHandle, clock: Clock) -> None:
        self.inner = handle
        self._limit = provider.max_url_seconds
        self._clock = clock

    def sign(self, mount: Mount, keys: Sequence[str], request: UrlRequest) -> list[SignedUrl]:
        """Sign as SignURLs does after its request checks."""
        options = request.at(self._clock.now())
        return rules.sign_urls(self.inner, mount, keys, options, self._limit)

    def list(
        self, mount: Mount, request: ListRequest, sign: UrlRequest | None = None
    ) -> Iterator[ListPage]:
        """List as ListPrefix does (page_size 0 means the maximum, as there)."""
        if request.page_size <= 0:
            request = ListRequest(request.prefix, request.delimiter, 1000, request.page_token)
        options = sign.at(self._clock.now()) if sign is not None else None
        return rules.list_pages(self.inner, mount, request, options, self._limit, self._clock.now)

    def check(self, mount: Mount) -> CheckResult:
        """CheckMount."""
        return self.inner.check(mount)

    def close(self) -> None:
        """Revocation or shutdown."""
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Provider-specific probes the suites inspect (a handle's delegation keys ...).
        return getattr(self.inner, name)


class Ruled:
    """A provider driven as the service drives it (parse by spec, rules around handles)."""

    def __init__(
        self,
        provider: CloudProvider,
        clock: Clock,
        *,
        url_policy: UrlPolicy = INSECURE,
        tenant: str = "acme",
        external_id: str = "ext-acme",
    ) -> None:
        self.provider = provider
        self._clock = clock
        self._context = ParseContext(tenant, url_policy, lambda: external_id)

    @property
    def name(self) -> str:
        """The provider's family."""
        return self.provider.name

    def parse(self, secret: RawSecret) -> ParsedSecret:
        """The kind's own parser, as at registration and at open."""
        return self.provider.kinds[secret.kind].read(secret.fields, self._context)

    def prepare(self, context: RegistrationContext, secret: RawSecret) -> Preparation:
        """Registration: parse, the kind's admission checks, then the cloud's."""
        parsed = self.parse(secret)
        admitted = self.provider.kinds[secret.kind].admit(parsed, self._clock.now())
        prep = self.provider.prepare(context, parsed)
        return Preparation({**parsed.metadata(), **prep.metadata}, (*admitted, *prep.warnings))

    def open(self, credential: Credential, secret: RawSecret) -> RuledHandle:
        """Open a handle on the parsed secret."""
        parsed = self.provider.kinds[secret.kind].reopen(secret.fields, self._context)
        handle = self.provider.open(credential, parsed)
        return RuledHandle(self.provider, handle, self._clock)

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Time-dependent warnings."""
        return self.provider.warnings(credential)


__all__ = ["INSECURE", "RawSecret", "Ruled", "RuledHandle", "UrlRequest"]
