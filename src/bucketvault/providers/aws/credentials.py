"""AWS key material as the provider holds it in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bucketvault.providers.aws.sigv4 import SigningIdentity


@dataclass(frozen=True)
class AwsCredentials:
    """A key pair, with a session token and expiry for assumed-role sessions."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)
    # None for long-lived access keys.
    expiration: datetime | None = None

    def identity(self) -> SigningIdentity:
        """The part of the credentials the signer needs."""
        return SigningIdentity(self.access_key_id, self.secret_access_key, self.session_token)


__all__ = ["AwsCredentials"]
