"""Azure provider settings, read once from the env mapping the composition root passes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bucketvault.config import env_int
from bucketvault.errors import InvalidArgument

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
# Azure refuses a user delegation key whose expiry is more than 7 days away; stay under it
# so that a clock a little ahead of Azure's is not refused.
MAX_DELEGATION_KEY_LIFETIME = 7 * 24 * 3600 - 3600
# The longest URL we sign, whatever the mount allows: a SAS is a bearer token.
MAX_SAS_LIFETIME = 7 * 24 * 3600


@dataclass(frozen=True)
class AzureConfig:
    """Everything the provider reads from the environment."""

    authority_host: str = DEFAULT_AUTHORITY
    # PEM bundle to trust for the token endpoint and storage accounts (self-signed in tests).
    ca_bundle: str = ""
    delegation_key_lifetime: int = MAX_DELEGATION_KEY_LIFETIME
    # Refresh the delegation key this long before it expires (advisory: old key still serves).
    delegation_key_refresh_ahead: int = 24 * 3600
    # Below this much life left, callers wait for a fresh key (mandatory refresh).
    delegation_key_min_remaining: int = 300
    sas_expiry_warning_days: int = 14
    retry_total: int = 2
    timeout_seconds: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AzureConfig:
        """Parse BUCKETVAULT_AZURE_* settings; fail fast on a bad value."""
        lifetime = env_int(
            env,
            "BUCKETVAULT_AZURE_DELEGATION_KEY_LIFETIME",
            MAX_DELEGATION_KEY_LIFETIME,
            600,
            MAX_DELEGATION_KEY_LIFETIME,
        )
        authority = env.get("BUCKETVAULT_AZURE_AUTHORITY_HOST", "") or DEFAULT_AUTHORITY
        if not authority.startswith("https://"):
            # azure-identity refuses a plain-http authority on first use; refuse it at start-up.
            raise InvalidArgument(
                "BUCKETVAULT_AZURE_AUTHORITY_HOST must be an https URL", reason="INVALID_CONFIG"
            )
        return cls(
            authority_host=authority,
            ca_bundle=env.get("BUCKETVAULT_AZURE_CA_BUNDLE", ""),
            delegation_key_lifetime=lifetime,
            delegation_key_refresh_ahead=env_int(
                env, "BUCKETVAULT_AZURE_DELEGATION_KEY_REFRESH_AHEAD", 24 * 3600, 0, lifetime
            ),
            retry_total=env_int(env, "BUCKETVAULT_AZURE_RETRY_TOTAL", 2, 0, 10),
            timeout_seconds=env_int(env, "BUCKETVAULT_AZURE_TIMEOUT_SECONDS", 20, 1, 300),
        )

    def transport_options(self) -> dict[str, Any]:
        """Keyword arguments for azure-core pipelines (TLS trust, retries, timeouts)."""
        return {
            "connection_verify": self.ca_bundle or True,
            "retry_total": self.retry_total,
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
        }


__all__ = ["DEFAULT_AUTHORITY", "MAX_DELEGATION_KEY_LIFETIME", "MAX_SAS_LIFETIME", "AzureConfig"]
