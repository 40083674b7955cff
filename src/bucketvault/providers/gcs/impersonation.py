"""GCS_IMPERSONATION: sign and list as the customer's service account, holding no key.

Signing: the V4 string to sign is built by the same V4Batch stages as for a key file
(v4.py); only the last stage differs, the signature comes from IAM Credentials signBlob
of the impersonated account (the signer_id in X-Goog-Credential is that account). One
signBlob per URL, on the bounded remote pool (parallel.map_remote).

Google guarantees a signBlob key "valid for at least 12 hours after the blob is signed"
(its system-managed keys rotate), so URLs are capped there rather than at V4's 7 days:
a longer URL might stop working before its X-Goog-Expires.

Listing: an access token of the impersonated account (generateAccessToken, read-only
storage scope), cached by the shared refresh-ahead cache, is never sent to GCS itself:
it is exchanged at STS for one downscoped to the mount's bucket and prefix (downscope.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bucketvault.clock import Clock
from bucketvault.models import CredentialKind, Onboarding
from bucketvault.providers.gcs.iamcredentials import TOKEN_CREATOR_ROLE, IamCredentials
from bucketvault.providers.gcs.kinds import GCS_IMPERSONATION
from bucketvault.providers.gcs.tokens import READ_ONLY_SCOPE, TOKEN_WINDOWS, AccessToken
from bucketvault.providers.gcs.v4 import RSA_ALGORITHM
from bucketvault.providers.refresh import Expiring, RefreshingValue, Spawn, start_thread

SIGN_BLOB_KEY_LIFETIME = timedelta(hours=12)
# Google's default and maximum without the org policy that allows 12 h.
TOKEN_LIFETIME = timedelta(hours=1)
DOCS_URL = "https://cloud.google.com/iam/docs/service-account-impersonation"


@dataclass(frozen=True)
class IamKeySigner:
    """GOOG4-RSA-SHA256 where the RSA signature is the impersonated account's signBlob."""

    signer_id: str
    iam: IamCredentials = field(repr=False)
    algorithm: str = RSA_ALGORITHM
    # Each signature is a network round trip: threads add throughput.
    parallel: bool = True

    def sign(self, datestamp: str, string_to_sign: str) -> str:
        """Hex of the signBlob signature of the string to sign."""
        return self.iam.sign_blob(self.signer_id, string_to_sign.encode("ascii")).hex()


class ImpersonatedTokens:
    """The impersonated account's read-only storage token, cached and refreshed ahead."""

    def __init__(
        self, iam: IamCredentials, account: str, clock: Clock, *, spawn: Spawn = start_thread
    ) -> None:
        self._iam = iam
        self._account = account
        self._tokens: RefreshingValue[AccessToken] = RefreshingValue(
            self._mint, clock, TOKEN_WINDOWS, spawn=spawn, what="impersonated GCS access token"
        )

    def __repr__(self) -> str:
        return f"ImpersonatedTokens(account={self._account!r})"

    def _mint(self) -> Expiring[AccessToken]:
        minted = self._iam.generate_access_token(self._account, [READ_ONLY_SCOPE], TOKEN_LIFETIME)
        return Expiring(AccessToken(minted.token, minted.expires_at), minted.expires_at)

    def current(self) -> AccessToken:
        """A valid access token of the impersonated account, with its expiry."""
        return self._tokens.get().value

    def token(self) -> str:
        """A valid access token of the impersonated account."""
        return self.current().token

    def clear(self) -> None:
        """Forget the token (handle closed)."""
        self._tokens.close()


def impersonation_onboarding(kind: CredentialKind, identity: str) -> Onboarding | None:
    """What a customer grants so that identity may sign and list as their account."""
    if kind != GCS_IMPERSONATION:
        return None
    member = f"serviceAccount:{identity}"
    command = (
        "gcloud iam service-accounts add-iam-policy-binding CUSTOMER_SA_EMAIL "
        f"--member={member} --role={TOKEN_CREATOR_ROLE}"
    )
    return Onboarding(
        kind=kind,
        identity=identity,
        steps=(
            "Create (or pick) a service account in your project for this service to act as, "
            "and grant it read access (roles/storage.objectViewer; objectCreator for PUT "
            "URLs) on the buckets to mount.",
            f"Grant {identity} the role {TOKEN_CREATOR_ROLE} on that service account "
            "(not on the project): it lets this service sign URLs and mint tokens as that "
            "account only.",
            "Make sure the IAM Service Account Credentials API "
            "(iamcredentials.googleapis.com) is enabled in your project.",
            'Register a GCS_IMPERSONATION credential with {"service_account": '
            '"CUSTOMER_SA_EMAIL"}; registration checks the grant with one signBlob call.',
        ),
        links={"gcloud": command, "member": member, "docs": DOCS_URL},
    )


__all__ = [
    "SIGN_BLOB_KEY_LIFETIME",
    "TOKEN_LIFETIME",
    "ImpersonatedTokens",
    "IamKeySigner",
    "impersonation_onboarding",
]
