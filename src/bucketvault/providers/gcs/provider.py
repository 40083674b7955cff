"""The GCS provider: service-account keys (RSA) and HMAC keys, behind CloudProvider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import requests

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition
from bucketvault.models import Credential, CredentialKind, Preparation, RegistrationContext
from bucketvault.providers.gcs.handles import GcsHandle, mount_endpoint
from bucketvault.providers.gcs.interop import InteropLister
from bucketvault.providers.gcs.kinds import KINDS, HmacSecret, ServiceAccountSecret
from bucketvault.providers.gcs.listing import JsonApiLister
from bucketvault.providers.gcs.tokens import TokenCache
from bucketvault.providers.gcs.v4 import MAX_EXPIRES, HmacKeySigner, RsaKeySigner
from bucketvault.providers.kinds import KindSpec, ParsedSecret
from bucketvault.urlpolicy import UrlPolicy


@dataclass(frozen=True)
class GcsProvider:
    """CloudProvider for GCS_SERVICE_ACCOUNT and GCS_HMAC credentials."""

    name: ClassVar[str] = "gcs"
    kinds: ClassVar[Mapping[CredentialKind, KindSpec]] = KINDS
    max_url_seconds: ClassVar[int] = MAX_EXPIRES

    clock: Clock
    url_policy: UrlPolicy

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """Nothing to ask Google: a key alone names no bucket to try (CheckMount does)."""
        return Preparation()

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """GCS keys do not expire by themselves: nothing time-dependent to say."""
        return ()

    def open(self, credential: Credential, secret: ParsedSecret) -> GcsHandle:
        """Build the handle that keeps the parsed key."""
        if isinstance(secret, ServiceAccountSecret):
            session = requests.Session()
            tokens = TokenCache(secret.info, self.clock, self.url_policy, session)

            def close_sa() -> None:
                tokens.clear()
                session.close()

            return GcsHandle(
                RsaKeySigner(secret.client_email, secret.private_key),
                JsonApiLister(session, tokens),
                f"service account {secret.client_email}",
                close_sa,
            )
        if isinstance(secret, HmacSecret):
            signer = HmacKeySigner(secret.access_id, secret.secret)
            lister = InteropLister(secret.access_id, secret.secret)

            def close_hmac() -> None:
                lister.close()
                signer.forget()

            return GcsHandle(signer, lister, f"HMAC key {secret.access_id}", close_hmac)
        raise FailedPrecondition(
            f"the gcs provider does not serve {credential.kind.value}", reason="WRONG_PROVIDER"
        )


__all__ = ["GcsHandle", "GcsProvider", "mount_endpoint"]
