"""The GCS provider: service-account keys (RSA), HMAC keys and impersonation (no key),
behind CloudProvider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition
from bucketvault.models import (
    Credential,
    CredentialKind,
    Onboarding,
    Preparation,
    RegistrationContext,
)
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.downscope import DownscopedTokens, StsClient
from bucketvault.providers.gcs.handles import (
    HMAC_SCOPE,
    IMPERSONATION_SCOPE,
    KEY_SCOPE,
    GcsHandle,
    mount_endpoint,
)
from bucketvault.providers.gcs.iamcredentials import IamCredentials
from bucketvault.providers.gcs.impersonation import (
    SIGN_BLOB_KEY_LIFETIME,
    IamKeySigner,
    ImpersonatedTokens,
    impersonation_onboarding,
)
from bucketvault.providers.gcs.interop import InteropLister
from bucketvault.providers.gcs.kinds import (
    KINDS,
    HmacSecret,
    ImpersonationSecret,
    ServiceAccountSecret,
)
from bucketvault.providers.gcs.listing import JsonApiLister, unscoped
from bucketvault.providers.gcs.parallel import map_remote
from bucketvault.providers.gcs.settings import GcsSettings
from bucketvault.providers.gcs.tokens import TokenCache
from bucketvault.providers.gcs.v4 import MAX_EXPIRES, HmacKeySigner, RsaKeySigner
from bucketvault.providers.kinds import KindSpec, ParsedSecret
from bucketvault.urlpolicy import UrlPolicy


@dataclass(frozen=True)
class GcsProvider:
    """CloudProvider for GCS_SERVICE_ACCOUNT, GCS_HMAC and GCS_IMPERSONATION credentials.

    ``iam`` calls IAM Credentials as the service's own identity (None: this deployment
    has no Google identity, so the keyless kind is refused); ``sts`` downscopes its
    listing tokens to each mount (None: Google's STS).
    """

    name: ClassVar[str] = "gcs"
    kinds: ClassVar[Mapping[CredentialKind, KindSpec]] = KINDS
    max_url_seconds: ClassVar[int] = MAX_EXPIRES

    clock: Clock
    url_policy: UrlPolicy
    iam: IamCredentials | None = field(default=None, repr=False)
    sts: StsClient | None = field(default=None, repr=False)
    settings: GcsSettings = field(default_factory=GcsSettings)

    def _iam(self) -> IamCredentials:
        if self.iam is None:
            raise FailedPrecondition(
                "this deployment has no Google identity to impersonate service accounts with",
                reason="GCP_IDENTITY_UNAVAILABLE",
            )
        return self.iam

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """A key alone names no bucket to try (CheckMount does); an impersonated account
        is checked with one signBlob, so a missing grant fails registration, not signing."""
        if isinstance(secret, ImpersonationSecret):
            iam = self._iam()
            iam.sign_blob(secret.service_account, b"bucketvault registration check")
            return Preparation({"impersonated_by": iam.identity.email})
        return Preparation()

    def onboarding(self, kind: CredentialKind, tenant: str) -> Onboarding | None:
        """The grant GCS_IMPERSONATION needs; the key kinds need none."""
        if kind not in self.kinds or impersonation_onboarding(kind, "") is None:
            return None
        return impersonation_onboarding(kind, self._iam().identity.email)

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """GCS keys do not expire by themselves: nothing time-dependent to say."""
        return ()

    def open(self, credential: Credential, secret: ParsedSecret) -> GcsHandle:
        """Build the handle that keeps the parsed key."""
        egress = Egress(self.url_policy)
        if isinstance(secret, ServiceAccountSecret):
            # Two sessions: listing GETs are retried, token POSTs only by google-auth.
            session = egress.session()
            listing_session = self.settings.retrying(egress.session())
            tokens = TokenCache(
                secret.info,
                self.clock,
                self.url_policy,
                session,
                timeout=self.settings.token_timeout_seconds,
            )

            def close_sa() -> None:
                tokens.clear()
                session.close()
                listing_session.close()

            return GcsHandle(
                RsaKeySigner(secret.client_email, secret.private_key),
                JsonApiLister(listing_session, unscoped(tokens), self.settings),
                f"service account {secret.client_email}",
                close_sa,
                scope=KEY_SCOPE.format(who=secret.client_email),
            )
        if isinstance(secret, HmacSecret):
            signer = HmacKeySigner(secret.access_id, secret.secret)
            lister = InteropLister(secret.access_id, secret.secret, egress, self.settings)

            def close_hmac() -> None:
                lister.close()
                signer.forget()

            return GcsHandle(
                signer, lister, f"HMAC key {secret.access_id}", close_hmac, scope=HMAC_SCOPE
            )
        if isinstance(secret, ImpersonationSecret):
            iam = self._iam()
            account = secret.service_account
            minted = ImpersonatedTokens(iam, account, self.clock)
            # Built without one (not by build()): Google's STS, owned by this handle.
            own_sts = None if self.sts is not None else StsClient(egress=egress)
            sts = self.sts or own_sts
            assert sts is not None
            downscoped = DownscopedTokens(minted.current, sts, account, self.clock)
            listing = self.settings.retrying(egress.session())

            def close_impersonation() -> None:
                downscoped.clear()
                minted.clear()
                listing.close()
                if own_sts is not None:
                    own_sts.close()

            return GcsHandle(
                IamKeySigner(account, iam),
                JsonApiLister(listing, downscoped.token_for, self.settings),
                f"service account {account} (impersonated)",
                close_impersonation,
                fan_out=map_remote,
                key_lifetime=SIGN_BLOB_KEY_LIFETIME,
                scope=IMPERSONATION_SCOPE.format(who=account),
            )
        raise FailedPrecondition(
            f"the gcs provider does not serve {credential.kind.value}", reason="WRONG_PROVIDER"
        )


__all__ = ["GcsHandle", "GcsProvider", "mount_endpoint"]
