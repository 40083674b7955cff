"""The GCS provider: service-account keys (RSA) and HMAC keys, behind CloudProvider."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Protocol

import requests

from bucketvault.clock import Clock
from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountState,
    Preparation,
    RegistrationContext,
    SecretDocument,
    SignedUrl,
    SignOptions,
)
from bucketvault.providers.base import CredentialHandle
from bucketvault.providers.gcs.interop import InteropLister
from bucketvault.providers.gcs.keys import parse_hmac, parse_service_account
from bucketvault.providers.gcs.listing import JsonApiLister, ListTarget
from bucketvault.providers.gcs.parallel import map_keys
from bucketvault.providers.gcs.tokens import TokenCache
from bucketvault.providers.gcs.v4 import (
    DEFAULT_ENDPOINT,
    MAX_EXPIRES,
    HmacKeySigner,
    KeySigner,
    RsaKeySigner,
    V4Batch,
    V4Options,
)
from bucketvault.urlpolicy import UrlPolicy


class _Lister(Protocol):
    def pages(self, target: ListTarget, request: ListRequest) -> Iterator[ListPage]: ...


def mount_endpoint(mount: Mount) -> str:
    """Where the mount's bucket lives: its own endpoint (path-style) or Google's."""
    return mount.endpoint.rstrip("/") if mount.endpoint else DEFAULT_ENDPOINT


class GcsHandle:
    """Signs and lists with one GCS credential; thread-safe."""

    def __init__(
        self,
        signer: KeySigner,
        lister: _Lister,
        clock: Clock,
        principal: str,
        on_close: Callable[[], None],
    ) -> None:
        self._signer = signer
        self._lister = lister
        self._clock = clock
        self._principal = principal
        self._on_close = on_close
        self._closed = False

    def __repr__(self) -> str:
        return f"GcsHandle(principal={self._principal!r})"

    def _open(self) -> None:
        # A closed handle has dropped its key material: signing now would make bad URLs.
        if self._closed:
            raise FailedPrecondition("the credential has been closed", reason="CREDENTIAL_CLOSED")

    def _batch(self, mount: Mount, options: SignOptions) -> tuple[V4Batch, str]:
        self._open()
        expires_in, capped_by = options.expires_in, options.capped_by
        if expires_in > MAX_EXPIRES:
            expires_in, capped_by = MAX_EXPIRES, "PROVIDER_MAX"
        if options.content_type and options.method is not Method.PUT:
            raise InvalidArgument(
                "content_type is only signed for PUT",
                reason="INVALID_ARGUMENT",
                field="content_type",
            )
        batch = V4Batch(
            self._signer,
            mount_endpoint(mount),
            mount.bucket,
            V4Options(
                method=options.method,
                expires_in=expires_in,
                signed_at=self._clock.now(),
                response_content_type=options.response_content_type,
                response_content_disposition=options.response_content_disposition,
                content_type=options.content_type,
            ),
        )
        return batch, capped_by

    def sign(self, mount: Mount, keys: Sequence[str], options: SignOptions) -> list[SignedUrl]:
        """Sign every key, same order; large RSA batches spread over the cores."""
        batch, capped_by = self._batch(mount, options)
        urls = map_keys(batch.url, keys, parallel=batch.parallel)
        # One read-only mapping shared by the batch: a thousand copies would cost more.
        headers = MappingProxyType(dict(batch.required_headers))
        return [
            SignedUrl(
                key=key,
                url=url,
                method=options.method,
                expires_at=batch.expires_at,
                required_headers=headers,
                expiry_capped_by=capped_by,
            )
            for key, url in zip(keys, urls, strict=True)
        ]

    def list(
        self, mount: Mount, request: ListRequest, sign: SignOptions | None
    ) -> Iterator[ListPage]:
        """Pages as the cloud returns them; each entry's GET URL signed when asked."""
        self._open()
        target = ListTarget(mount_endpoint(mount), mount.bucket, self._principal)
        # Listings run in lexicographic order, so a common prefix not above the highest one
        # already yielded is a repeat (a prefix spanning pages; emulators repeat them all).
        # Tracking the highest one keeps memory constant, unlike a set of every prefix seen.
        highest = ""
        for raw in self._lister.pages(target, request):
            fresh = tuple(p for p in raw.common_prefixes if p > highest)
            if fresh:
                highest = max(highest, *fresh)
            entries = raw.entries
            if sign is not None and entries:
                get = replace(sign, method=Method.GET, content_type="")
                batch, _ = self._batch(mount, get)
                urls = map_keys(batch.url, [e.key for e in entries], parallel=batch.parallel)
                entries = tuple(replace(e, url=u) for e, u in zip(entries, urls, strict=True))
            yield ListPage(entries, fresh, raw.next_page_token)

    def check(self, mount: Mount) -> CheckResult:
        """List one object under the mount's prefix and classify the outcome."""
        target = ListTarget(mount_endpoint(mount), mount.bucket, self._principal)
        probe = ListRequest(prefix=mount.prefix, delimiter="", page_size=1, page_token="")
        try:
            next(iter(self._lister.pages(target, probe)))
        except PermissionDenied as exc:
            return CheckResult(MountState.FORBIDDEN, "ACCESS_DENIED", exc.message)
        except NotFound as exc:
            return CheckResult(MountState.NOT_FOUND, exc.reason, exc.message)
        except BucketVaultError as exc:
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        return CheckResult(
            MountState.AVAILABLE, "OK", f"{self._principal} can list bucket {mount.bucket}"
        )

    def close(self) -> None:
        """Drop sessions, tokens and key material."""
        self._closed = True
        self._on_close()


class GcsProvider:
    """CloudProvider for GCS_SERVICE_ACCOUNT and GCS_HMAC credentials."""

    name = "gcs"
    kinds = frozenset({CredentialKind.GCS_SERVICE_ACCOUNT, CredentialKind.GCS_HMAC})

    def __init__(self, clock: Clock, url_policy: UrlPolicy) -> None:
        self._clock = clock
        self._url_policy = url_policy

    def prepare(self, context: RegistrationContext, secret: SecretDocument) -> Preparation:
        """Validate the key locally (no network: a key alone names no bucket to try)."""
        if secret.kind is CredentialKind.GCS_SERVICE_ACCOUNT:
            key = parse_service_account(secret.fields)
            self._url_policy.check_token_uri(key.token_uri)
            return Preparation(
                metadata={
                    "client_email": key.client_email,
                    "project_id": key.project_id,
                    "private_key_id": key.private_key_id,
                    "token_uri": key.token_uri,
                    "rsa_key_bits": str(key.private_key.key_size),
                }
            )
        if secret.kind is CredentialKind.GCS_HMAC:
            hmac_key = parse_hmac(secret.fields)
            return Preparation(metadata={"access_id": hmac_key.access_id})
        raise InvalidArgument(
            f"{secret.kind.value} is not a GCS credential kind", reason="WRONG_PROVIDER"
        )

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """GCS keys do not expire by themselves: nothing time-dependent to say."""
        return ()

    def open(self, credential: Credential, secret: SecretDocument) -> CredentialHandle:
        """Parse the key once and build the handle that keeps it."""
        if secret.kind is CredentialKind.GCS_SERVICE_ACCOUNT:
            key = parse_service_account(secret.fields)
            session = requests.Session()
            tokens = TokenCache(key.info, self._clock, self._url_policy, session)

            def close_sa() -> None:
                tokens.clear()
                session.close()

            return GcsHandle(
                RsaKeySigner(key.client_email, key.private_key),
                JsonApiLister(session, tokens),
                self._clock,
                f"service account {key.client_email}",
                close_sa,
            )
        if secret.kind is CredentialKind.GCS_HMAC:
            hmac_key = parse_hmac(secret.fields)
            signer = HmacKeySigner(hmac_key.access_id, hmac_key.secret)
            lister = InteropLister(hmac_key.access_id, hmac_key.secret)

            def close_hmac() -> None:
                lister.close()
                signer.forget()

            return GcsHandle(
                signer, lister, self._clock, f"HMAC key {hmac_key.access_id}", close_hmac
            )
        raise InvalidArgument(
            f"{secret.kind.value} is not a GCS credential kind", reason="WRONG_PROVIDER"
        )


__all__ = ["GcsHandle", "GcsProvider", "mount_endpoint"]
