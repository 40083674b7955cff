"""The AWS credential handle: SigV4 presigning, listing and checks with one credential."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bucketvault.errors import NotFound, Unavailable
from bucketvault.models import (
    CheckResult,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountState,
    SignOptions,
)
from bucketvault.providers.aws import listing
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.endpoints import aws_target, custom_target
from bucketvault.providers.aws.errors import AssumeRoleDenied
from bucketvault.providers.aws.scope import SessionPolicyTooLarge
from bucketvault.providers.aws.sessions import SessionSource
from bucketvault.providers.aws.settings import DEFAULT_REGION
from bucketvault.providers.aws.sigv4 import (
    PresignerCache,
    PresignParams,
    PresignTarget,
    SigningKeyCache,
    amz_date,
)
from bucketvault.providers.base import SESSION_EXPIRY, SignedBatch
from bucketvault.providers.cors import CorsTarget, probe_key, s3_how, s3_rule
from bucketvault.providers.signing import encode_path


@dataclass(frozen=True)
class _Location:
    region: str
    endpoint: str
    target: PresignTarget


class _Signer:
    """One batch's SigV4 signer, bound to one session (so the cap matches what signs)."""

    limit_reason = SESSION_EXPIRY

    def __init__(
        self,
        credentials: AwsCredentials,
        location: _Location,
        keys: SigningKeyCache,
        presigners: PresignerCache,
    ) -> None:
        self.credentials = credentials
        self._location = location
        self._keys = keys
        self._presigners = presigners

    @property
    def valid_until(self) -> datetime | None:
        """The session's expiry (None for long-lived access keys)."""
        return self.credentials.expiration

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        """Presign every key: one SHA-256 and one HMAC per key."""
        identity = self.credentials.identity()
        timestamp = amz_date(options.signed_at)
        region = self._location.region
        signing_key = self._keys.get(identity, timestamp[:8], region, "s3")
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        wanted = options.overrides
        if options.method is Method.PUT:
            if wanted.content_type:
                headers["Content-Type"] = wanted.content_type
        else:
            if wanted.response_content_type:
                query.append(("response-content-type", wanted.response_content_type))
            if wanted.response_content_disposition:
                query.append(("response-content-disposition", wanted.response_content_disposition))
        params = PresignParams(
            options.method.value, options.expires_in, options.signed_at, query, headers
        )
        presign = self._presigners.get(self._location.target, identity, params, signing_key).url
        return SignedBatch([presign(key) for key in keys], headers)


@dataclass(eq=False)
class AwsHandle:
    """Signs, lists and checks with one credential; thread-safe."""

    sessions: SessionSource = field(repr=False)
    clients: listing.S3Clients = field(repr=False)
    # The credential's or the service's S3 endpoint and region ("" = AWS / resolve).
    endpoint: str
    region: str
    _signing_keys: SigningKeyCache = field(default_factory=SigningKeyCache, init=False, repr=False)
    _presigners: PresignerCache = field(default_factory=PresignerCache, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _locations: dict[tuple[str, str, str, str], _Location] = field(
        default_factory=dict, init=False, repr=False
    )

    def _location(self, mount: Mount, credentials: AwsCredentials) -> _Location:
        endpoint = mount.endpoint.rstrip("/") or self.endpoint
        slot = (mount.mount_id, mount.bucket, endpoint, mount.region)
        location = self._locations.get(slot)
        if location is not None:
            return location
        region = mount.region or self.region
        if not region:
            # Once per mount: the bucket's home region, which its URLs must be scoped to.
            client = self.clients.get(credentials, DEFAULT_REGION, endpoint)
            region = listing.bucket_region(client, mount.bucket) or DEFAULT_REGION
        if endpoint:
            target = custom_target(endpoint, mount.bucket, region)
        else:
            target = aws_target(mount.bucket, region)
        location = _Location(region, endpoint, target)
        with self._lock:
            self._locations[slot] = location
        return location

    def signer(self, mount: Mount, options: SignOptions) -> _Signer:
        """A signer holding the caller's session for the mount's scope."""
        credentials = self.sessions.get(mount, options.caller)
        location = self._location(mount, credentials)
        return _Signer(credentials, location, self._signing_keys, self._presigners)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """ListObjectsV2 pages, fetched only as the caller consumes them."""
        credentials = self.sessions.get(mount, request.caller)
        location = self._location(mount, credentials)
        client = self.clients.get(credentials, location.region, location.endpoint)
        return listing.list_pages(client, mount.bucket, request)

    def check(self, mount: Mount) -> CheckResult:
        """ListObjectsV2(MaxKeys=1) (+ HeadBucket) with this credential, and what the cloud
        itself confines the mount to."""
        scope = self.sessions.enforced_scope(mount)
        result = self._check(mount)
        return replace(result, scope=scope)

    def _check(self, mount: Mount) -> CheckResult:
        try:
            credentials = self.sessions.get(mount, "")
        except AssumeRoleDenied as exc:
            return CheckResult(MountState.FORBIDDEN, exc.reason, exc.message)
        except SessionPolicyTooLarge as exc:
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        try:
            location = self._location(mount, credentials)
        except NotFound as exc:
            return CheckResult(MountState.NOT_FOUND, exc.reason, exc.message)
        except Unavailable as exc:
            server = mount.endpoint or self.endpoint or "S3"
            return CheckResult(
                MountState.MISCONFIGURED,
                "ENDPOINT_UNREACHABLE",
                f"could not reach {server} ({exc.message}): check the mount's endpoint and region",
            )
        client = self.clients.get(credentials, location.region, location.endpoint)
        where = listing.S3Location(mount.bucket, location.region, location.endpoint)
        result = listing.check_bucket(client, where, mount.prefix)
        if result.state is not MountState.AVAILABLE:
            # The cached region may be what is wrong: resolve again next time.
            with self._lock:
                self._locations = {
                    k: v for k, v in self._locations.items() if k[0] != mount.mount_id
                }
        return result

    def cors_target(self, mount: Mount) -> CorsTarget:
        """The mount's unsigned object URL (S3 answers preflights without auth)."""
        target = self._location(mount, self.sessions.get(mount, "")).target
        url = f"{target.origin}{target.path_prefix}{encode_path(probe_key(mount))}"
        return CorsTarget(url, s3_rule, s3_how(mount.bucket))

    def close(self) -> None:
        """Drop the sessions, derived keys and clients."""
        self.sessions.close()
        self._signing_keys.clear()
        self._presigners.clear()
        self.clients.clear()


__all__ = ["AwsHandle"]
