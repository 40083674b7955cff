"""Credential handles: one per active Azure credential, holding its decrypted material.

The kinds share URL building, expiry capping, listing and CheckMount; they differ
in where the SAS comes from (the customer's own token, a service SAS signed with the
account key, or a user-delegation SAS signed with a cached delegation key, for a
customer's service principal or for delegated access alike).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, FailedPrecondition
from bucketvault.models import (
    CheckResult,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountState,
    SignOptions,
)
from bucketvault.providers.azure.credentials import GuardedCredential
from bucketvault.providers.azure.delegation import delegation_keys
from bucketvault.providers.azure.errors import (
    FORBIDDEN_CODES,
    describe,
    is_identity_error,
    translate,
)
from bucketvault.providers.azure.kinds import Account, SasToken
from bucketvault.providers.azure.listing import iter_pages
from bucketvault.providers.azure.sas import (
    CREATE_WRITE,
    LIST,
    PERMISSION_NAMES,
    READ,
    DelegationKey,
    SasRequest,
    encode_blob_name,
    service_sas,
    user_delegation_sas,
)
from bucketvault.providers.azure.settings import AzureConfig
from bucketvault.providers.base import SAS_EXPIRY, SESSION_EXPIRY, SignedBatch
from bucketvault.providers.cors import CorsTarget, azure_how, azure_rule, probe_key
from bucketvault.providers.refresh import RefreshingValue

# key -> SAS query string for it (no '?').
TokenFor = Callable[[str], str]


# (permission, expiry) -> key -> SAS query string
TokenMaker = Callable[[str, datetime], TokenFor]
# What a kind contributes to a batch: its expiry limit, why, and its token maker.
_Begun = tuple[datetime | None, str, TokenMaker]


@dataclass(frozen=True)
class Batch:
    """One batch's signer: where the mount's blobs live and how each gets its SAS."""

    base: str
    valid_until: datetime | None
    limit_reason: str
    tokens: TokenMaker

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        """Per-key SAS URLs expiring exactly when the options say."""
        expiry = options.signed_at + timedelta(seconds=options.expires_in)
        permission = CREATE_WRITE if options.method is Method.PUT else READ
        token_for = self.tokens(permission, expiry)
        base = self.base
        urls = [f"{base}{encode_blob_name(key)}?{token_for(key)}" for key in keys]
        return SignedBatch(urls, _required_headers(options))


_PUT_HEADERS = MappingProxyType({"x-ms-blob-type": "BlockBlob"})
_NO_HEADERS: MappingProxyType[str, str] = MappingProxyType({})


def _required_headers(options: SignOptions) -> MappingProxyType[str, str]:
    if options.method is not Method.PUT:
        return _NO_HEADERS
    content_type = options.overrides.content_type
    if not content_type:
        return _PUT_HEADERS
    return MappingProxyType({**_PUT_HEADERS, "Content-Type": content_type})


class AzureHandle:
    """What every Azure credential kind shares; subclasses supply the SAS."""

    def __init__(
        self, config: AzureConfig, clock: Clock, account: Account, credential: Any
    ) -> None:
        self._config = config
        self._clock = clock
        self._account_url = account.url.rstrip("/")
        self._account_name = account.name
        # What azure-storage-blob clients authenticate with (a SAS, a key, an Entra credential).
        self._sdk_credential = credential
        self._containers: dict[tuple[str, str], ContainerClient] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self._account_name!r})"

    @property
    def sdk_credential(self) -> Any:
        """What azure-storage-blob clients authenticate with."""
        return self._sdk_credential

    # -- signing -------------------------------------------------------------------------

    def base_url(self, mount: Mount) -> str:
        """The account URL for this mount: its endpoint override, else the credential's."""
        return (mount.endpoint or self._account_url).rstrip("/")

    def _begin(self, mount: Mount, options: SignOptions) -> _Begun:
        """Check the credential can sign now; return its expiry limit and token maker."""
        raise NotImplementedError

    def signer(self, mount: Mount, options: SignOptions) -> Batch:
        """A signer of per-key SAS URLs under the mount's container."""
        until, reason, tokens = self._begin(mount, options)
        return Batch(f"{self.base_url(mount)}/{quote(mount.bucket)}/", until, reason, tokens)

    # -- listing and checks --------------------------------------------------------------

    def cors_target(self, mount: Mount) -> CorsTarget:
        """The blob URL without a SAS: Blob storage answers preflights unauthenticated,
        from the account's Blob service CORS rules."""
        url = f"{self.base_url(mount)}/{quote(mount.bucket)}/{encode_blob_name(probe_key(mount))}"
        return CorsTarget(url, azure_rule(self._account_name), azure_how(self._account_name))

    def _container(self, mount: Mount) -> ContainerClient:
        cache_key = (self.base_url(mount), mount.bucket)
        with self._lock:
            client = self._containers.get(cache_key)
            if client is None:
                client = ContainerClient(
                    cache_key[0],
                    mount.bucket,
                    credential=self._sdk_credential,
                    **self._config.transport_options(),
                )
                self._containers[cache_key] = client
            return client

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """Pages of the container under request.prefix."""
        return iter_pages(self._container(mount), request)

    def _precheck(self, mount: Mount) -> CheckResult | None:
        """A verdict reachable without calling Azure (expired SAS ...), if any."""
        return None

    def _forbidden_detail(self) -> tuple[str, str]:
        return "AZURE_FORBIDDEN", "the credential may not list this container"

    def check(self, mount: Mount) -> CheckResult:
        """List one blob: AVAILABLE, FORBIDDEN, NOT_FOUND or MISCONFIGURED, with a reason,
        and what the credential grants beyond the mount's needs."""
        result = replace(self._check(mount), scope=self.enforced_scope(mount))
        warnings = self._check_warnings(mount)
        return replace(result, warnings=warnings) if warnings else result

    def enforced_scope(self, mount: Mount) -> str:
        """What Azure itself confines this mount's URLs to (CheckMount's enforced_scope);
        "" when a kind does not say."""
        return ""

    def _check_warnings(self, mount: Mount) -> tuple[str, ...]:
        """Key-signed kinds mint each SAS for the mount itself: nothing granted beyond it."""
        return ()

    def _check(self, mount: Mount) -> CheckResult:
        early = self._precheck(mount)
        if early is not None:
            return early
        # No retries: an unreachable account should answer now, not after backoff.
        options = {**self._config.transport_options(), "retry_total": 0}
        try:
            with ContainerClient(
                self.base_url(mount), mount.bucket, credential=self._sdk_credential, **options
            ) as client:
                next(iter(client.list_blobs(results_per_page=1).by_page()), None)
        except BucketVaultError as exc:
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        except AzureError as exc:
            return self._classify(exc)
        except Exception as exc:
            if is_identity_error(exc):
                return self._classify(exc)
            raise
        return CheckResult(MountState.AVAILABLE, "OK", "the container answered a listing")

    def _classify(self, exc: BaseException) -> CheckResult:
        if is_identity_error(exc):
            return CheckResult(
                MountState.MISCONFIGURED,
                "AZURE_AUTH_FAILED",
                "the service principal could not get a token",
            )
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            code = getattr(exc, "error_code", None) or ""
            if code == "ContainerNotFound" or exc.status_code == 404:
                return CheckResult(
                    MountState.NOT_FOUND, "CONTAINER_NOT_FOUND", "the container does not exist"
                )
            if code in FORBIDDEN_CODES or exc.status_code in (401, 403):
                reason, detail = self._forbidden_detail()
                return CheckResult(MountState.FORBIDDEN, reason, f"{detail} ({describe(exc)})")
            return CheckResult(MountState.MISCONFIGURED, "AZURE_ERROR", describe(exc))
        return CheckResult(
            MountState.MISCONFIGURED,
            "ACCOUNT_UNREACHABLE",
            "the storage account URL did not answer",
        )

    def close(self) -> None:
        """Close HTTP pipelines and drop material."""
        with self._lock:
            clients, self._containers = self._containers, {}
        for client in clients.values():
            client.close()


class SasHandle(AzureHandle):
    """AZURE_SAS: the customer's container or account SAS, appended as is."""

    def __init__(self, config: AzureConfig, clock: Clock, account: Account, sas: SasToken) -> None:
        super().__init__(config, clock, account, sas.token)
        self._sas = sas

    def _begin(self, mount: Mount, options: SignOptions) -> _Begun:
        now = self._clock.now()
        if now >= self._sas.expiry:
            raise FailedPrecondition(
                "the credential's SAS has expired: register a new one",
                reason="SAS_EXPIRED",
            )
        needed = "cw" if options.method is Method.PUT else "r"
        if not self._sas.allows(needed):
            raise FailedPrecondition(
                f"the credential's SAS does not allow {options.method.value} "
                f"(needs one of '{needed}' in sp)",
                reason="SAS_PERMISSION_MISSING",
            )
        wanted = options.overrides
        if wanted.response_content_type or wanted.response_content_disposition:
            # rsct/rscd are signed fields: a customer SAS cannot be given new ones.
            raise FailedPrecondition(
                "response header overrides need a key-signed SAS, not a customer SAS",
                reason="SAS_OVERRIDES_UNSUPPORTED",
            )
        token = self._sas.token
        return self._sas.expiry, SAS_EXPIRY, lambda _p, _e: lambda _key: token

    def _precheck(self, mount: Mount) -> CheckResult | None:
        if self._clock.now() >= self._sas.expiry:
            return CheckResult(MountState.FORBIDDEN, "SAS_EXPIRED", "the SAS has expired")
        return None

    def _check_warnings(self, mount: Mount) -> tuple[str, ...]:
        """A customer SAS is used as it is: say what it grants that the mount does not need."""
        sas, out = self._sas, []
        needed = set(LIST + READ)
        if Method.PUT in mount.policy.allowed_methods:
            needed |= set(CREATE_WRITE)
        extra = sorted(set(sas.permissions) - needed)
        if extra:
            named = ", ".join(f"{p} ({PERMISSION_NAMES.get(p, 'unknown')})" for p in extra)
            out.append(f"the SAS grants more than the mount needs: {named}")
        if sas.kind == "account":
            out.append(
                "the SAS is an account SAS: it opens every container of the account, "
                "not just this mount's; a container SAS (sr=c) would do"
            )
        left = int((sas.expiry - self._clock.now()).total_seconds())
        if left > mount.policy.max_ttl_seconds and not mount.policy.allow_credential_lifetime:
            out.append(
                f"the SAS works for {left} s, past the mount's max TTL: signing is refused "
                "(SAS_OUTLIVES_MOUNT_TTL) until the mount allows the credential's lifetime"
            )
        return tuple(out)

    def enforced_scope(self, mount: Mount) -> str:
        """The customer's token is appended as is: it, not the mount, is what Azure enforces."""
        sas = self._sas
        if sas.kind == "account":
            reach = f"account scope (srt={sas.resource}, ss={sas.services}): every container"
        else:
            reach = f"container scope (sr={sas.resource})"
        return (
            f"the customer's SAS as issued: sp={sas.permissions}, {reach}, "
            f"until {sas.expiry.isoformat()}"
        )

    def _forbidden_detail(self) -> tuple[str, str]:
        if not self._sas.allows("l"):
            return "SAS_PERMISSION_MISSING", "the SAS lacks list permission"
        return "AZURE_FORBIDDEN", "the SAS does not grant access to this container"


class SharedKeyHandle(AzureHandle):
    """AZURE_SHARED_KEY: per-blob service SAS signed locally with the account key."""

    def __init__(self, config: AzureConfig, clock: Clock, account: Account, key: bytes) -> None:
        shared = {"account_name": account.name, "account_key": base64.b64encode(key).decode()}
        super().__init__(config, clock, account, shared)
        self._key = key

    def _begin(self, mount: Mount, options: SignOptions) -> _Begun:
        key, name = self._key, self._account_name

        def tokens(permission: str, expiry: datetime) -> TokenFor:
            return service_sas(key, _request(name, mount, options, permission, expiry)).token

        return None, SESSION_EXPIRY, tokens

    def enforced_scope(self, mount: Mount) -> str:
        """Service SAS per URL; the account key itself never leaves the service."""
        return (
            "per-object SAS minted for each URL (sp=r or cw on one blob, expiring with the "
            f"URL), a service SAS signed with the account key, under container {mount.bucket}"
        )

    def close(self) -> None:
        self._key = b""
        super().close()


class ServicePrincipalHandle(AzureHandle):
    """AZURE_SERVICE_PRINCIPAL and AZURE_DELEGATED: per-blob user-delegation SAS from a
    cached delegation key. The kinds differ only in whose Entra credential asks for the
    key (the customer's app, or the service's own app in the customer's tenant)."""

    def __init__(
        self, config: AzureConfig, clock: Clock, account: Account, credential: GuardedCredential
    ) -> None:
        super().__init__(config, clock, account, credential)
        self._credential = credential
        self._keys: dict[str, RefreshingValue[DelegationKey]] = {}

    def delegation_keys(self, mount: Mount) -> RefreshingValue[DelegationKey]:
        """The key cache of the mount's account (created on first use)."""
        url = self.base_url(mount)
        with self._lock:
            cache = self._keys.get(url)
            if cache is None:
                cache = delegation_keys(
                    lambda start, expiry: fetch_delegation_key(
                        self._config, url, self._credential, start, expiry
                    ),
                    self._clock,
                    lifetime=self._config.delegation_key_lifetime,
                    refresh_ahead=self._config.delegation_key_refresh_ahead,
                    min_remaining=self._config.delegation_key_min_remaining,
                )
                self._keys[url] = cache
            return cache

    def _begin(self, mount: Mount, options: SignOptions) -> _Begun:
        # A SAS signed with a delegation key dies with the key: cap by its expiry.
        current = self.delegation_keys(mount).get()
        name = self._account_name

        def tokens(permission: str, expiry: datetime) -> TokenFor:
            request = _request(name, mount, options, permission, expiry)
            return user_delegation_sas(current.value, request).token

        return current.expires_at, SESSION_EXPIRY, tokens

    def enforced_scope(self, mount: Mount) -> str:
        """User-delegation SAS per URL, bounded by the principal's own RBAC roles."""
        return (
            "per-object SAS minted for each URL (sp=r or cw on one blob, expiring with the "
            f"URL), a user-delegation SAS under container {mount.bucket}, and never more than "
            "the principal's own RBAC roles allow"
        )

    def _precheck(self, mount: Mount) -> CheckResult | None:
        try:
            self.delegation_keys(mount).get()
        except BucketVaultError as exc:
            if exc.reason == "AZURE_FORBIDDEN":
                return CheckResult(
                    MountState.FORBIDDEN,
                    "DELEGATION_KEY_FORBIDDEN",
                    "the service principal may not get a user delegation key",
                )
            if exc.reason == "AZURE_UNREACHABLE":
                return CheckResult(
                    MountState.MISCONFIGURED,
                    "ACCOUNT_UNREACHABLE",
                    "the storage account URL did not answer",
                )
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        return None

    def close(self) -> None:
        with self._lock:
            for cache in self._keys.values():
                cache.close()
            self._keys.clear()
        super().close()
        self._credential.close()


def _request(
    account_name: str, mount: Mount, options: SignOptions, permission: str, expiry: datetime
) -> SasRequest:
    reading = options.method is not Method.PUT
    return SasRequest(
        account_name,
        mount.bucket,
        permission,
        expiry,
        content_type=options.overrides.response_content_type if reading else "",
        content_disposition=options.overrides.response_content_disposition if reading else "",
    )


def fetch_delegation_key(
    config: AzureConfig,
    account_url: str,
    credential: GuardedCredential,
    start: datetime,
    expiry: datetime,
) -> DelegationKey:
    """Get User Delegation Key for [start, expiry], errors translated."""
    try:
        with BlobServiceClient(
            account_url, credential=credential, **config.transport_options()
        ) as service:
            key = service.get_user_delegation_key(start, expiry)
    except Exception as exc:
        if isinstance(exc, AzureError) or is_identity_error(exc):
            raise translate(exc, "getting a user delegation key") from exc
        raise
    return DelegationKey(
        signed_oid=key.signed_oid or "",
        signed_tid=key.signed_tid or "",
        signed_start=key.signed_start or "",
        signed_expiry=key.signed_expiry or "",
        signed_service=key.signed_service or "",
        signed_version=key.signed_version or "",
        value=key.value or "",
        signed_delegated_user_tid=key.signed_delegated_user_tid or "",
    )


__all__ = [
    "AzureHandle",
    "SasHandle",
    "ServicePrincipalHandle",
    "SharedKeyHandle",
    "fetch_delegation_key",
]
