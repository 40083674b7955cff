"""The GCS credential handle: V4 signing (RSA or HMAC), listing and checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from bucketvault.errors import BucketVaultError, FailedPrecondition, NotFound, PermissionDenied
from bucketvault.models import CheckResult, ListPage, ListRequest, Mount, MountState, SignOptions
from bucketvault.providers.base import SESSION_EXPIRY, SignedBatch
from bucketvault.providers.cors import CorsTarget, gcs_how, gcs_rule, probe_key
from bucketvault.providers.gcs.errors import ListTarget
from bucketvault.providers.gcs.parallel import map_keys
from bucketvault.providers.gcs.v4 import DEFAULT_ENDPOINT, KeySigner, V4Batch, V4Options
from bucketvault.providers.signing import encode_path


class Lister(Protocol):
    def pages(self, target: ListTarget, request: ListRequest) -> Iterator[ListPage]: ...


# How a batch's keys are spread over threads (parallel.map_keys or map_remote).
FanOut = Callable[..., list[str]]


def mount_endpoint(mount: Mount) -> str:
    """Where the mount's bucket lives: its own endpoint (path-style) or Google's."""
    return mount.endpoint.rstrip("/") if mount.endpoint else DEFAULT_ENDPOINT


class _Signer:
    """V4 signing of one batch; a GCS key does not expire by itself."""

    limit_reason = SESSION_EXPIRY

    def __init__(
        self,
        key: KeySigner,
        mount: Mount,
        fan_out: FanOut = map_keys,
        valid_until: datetime | None = None,
    ) -> None:
        self._key = key
        self._mount = mount
        self._fan_out = fan_out
        self.valid_until = valid_until

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        """Sign every key, same order; large RSA batches spread over the cores."""
        batch = V4Batch(
            self._key,
            mount_endpoint(self._mount),
            self._mount.bucket,
            V4Options(options.method, options.expires_in, options.signed_at, options.overrides),
        )
        urls = self._fan_out(batch.url, keys, parallel=batch.parallel)
        return SignedBatch(urls, batch.required_headers)


@dataclass(eq=False)
class GcsHandle:
    """Signs and lists with one GCS credential; thread-safe."""

    key: KeySigner = field(repr=False)
    lister: Lister = field(repr=False)
    # Who signs, for messages: "service account x@y" or "HMAC key GOOG1...".
    principal: str
    on_close: Callable[[], None] = field(repr=False)
    fan_out: FanOut = field(default=map_keys, repr=False)
    # How long a signature stays good after signing (None: as long as the key exists).
    key_lifetime: timedelta | None = None
    # What Google itself confines this credential to, for CheckMount (see scope_of).
    scope: str = ""
    _closed: bool = field(default=False, init=False, repr=False)

    def _open(self) -> None:
        # A closed handle has dropped its key material: signing now would make bad URLs.
        if self._closed:
            raise FailedPrecondition("the credential has been closed", reason="CREDENTIAL_CLOSED")

    def signer(self, mount: Mount, options: SignOptions) -> _Signer:
        """A V4 signer for the mount's bucket."""
        self._open()
        until = None if self.key_lifetime is None else options.signed_at + self.key_lifetime
        return _Signer(self.key, mount, self.fan_out, until)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        """Pages as the cloud returns them."""
        self._open()
        target = ListTarget(mount_endpoint(mount), mount.bucket, self.principal, mount.prefix)
        return self.lister.pages(target, request)

    def check(self, mount: Mount) -> CheckResult:
        """List one object under the mount's prefix and classify the outcome, with what
        Google itself enforces for the mount."""
        return replace(self._check(mount), scope=self.scope)

    def _check(self, mount: Mount) -> CheckResult:
        target = ListTarget(mount_endpoint(mount), mount.bucket, self.principal, mount.prefix)
        probe = ListRequest(prefix=mount.prefix, delimiter="", page_size=1, page_token="")
        try:
            next(iter(self.lister.pages(target, probe)))
        except PermissionDenied as exc:
            return CheckResult(MountState.FORBIDDEN, "ACCESS_DENIED", exc.message)
        except NotFound as exc:
            return CheckResult(MountState.NOT_FOUND, exc.reason, exc.message)
        except BucketVaultError as exc:
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        return CheckResult(
            MountState.AVAILABLE, "OK", f"{self.principal} can list bucket {mount.bucket}"
        )

    def cors_target(self, mount: Mount) -> CorsTarget:
        """The XML API object URL, path-style as signed URLs are (GCS applies a bucket's
        CORS configuration to XML API requests and answers their preflights unsigned)."""
        url = f"{mount_endpoint(mount)}/{mount.bucket}/{encode_path(probe_key(mount))}"
        return CorsTarget(url, gcs_rule, gcs_how(mount.bucket))

    def close(self) -> None:
        """Drop sessions, tokens and key material."""
        self._closed = True
        self.on_close()


# CheckMount's enforced scope per kind: GCS has no per-URL or per-session downscoping
# that V4 signing could use, so the cloud enforces whatever the customer granted.
KEY_SCOPE = (
    "none: a service-account key reaches whatever the customer granted {who}; "
    "only bucketvault's checks confine this mount"
)
HMAC_SCOPE = (
    "none: an HMAC key reaches whatever the customer granted its service account; "
    "only bucketvault's checks confine this mount"
)
IMPERSONATION_SCOPE = (
    "listing: a token downscoped to the mount's bucket and prefix (Credential Access "
    "Boundary); signing: {who}'s own IAM grants, which the URLs it signs can use"
)


__all__ = [
    "HMAC_SCOPE",
    "IMPERSONATION_SCOPE",
    "KEY_SCOPE",
    "FanOut",
    "GcsHandle",
    "mount_endpoint",
]
