"""The Entra credential of a service principal, with failures made recognisable."""

from __future__ import annotations

from typing import Any

from azure.identity import ClientSecretCredential

from bucketvault.providers.azure.errors import TokenError
from bucketvault.providers.azure.settings import AzureConfig


class GuardedCredential:
    """Wraps ClientSecretCredential so token failures surface as TokenError, not 403s."""

    def __init__(self, inner: ClientSecretCredential) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return "GuardedCredential(<hidden>)"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Delegate to azure-identity; any failure becomes TokenError (cause chained)."""
        try:
            return self._inner.get_token(*scopes, **kwargs)
        except Exception as exc:
            raise TokenError(type(exc).__name__) from exc

    def close(self) -> None:
        """Close the underlying HTTP pipeline."""
        self._inner.close()


def service_principal(
    config: AzureConfig, tenant_id: str, client_id: str, client_secret: str
) -> GuardedCredential:
    """A client-secret credential against the configured authority host."""
    inner = ClientSecretCredential(
        tenant_id,
        client_id,
        client_secret,
        authority=config.authority_host,
        # Instance discovery asks login.microsoftonline.com about the authority: a call
        # out of the deployment for nothing when the authority is configured explicitly.
        disable_instance_discovery=config.authority_host != "https://login.microsoftonline.com",
        connection_verify=config.ca_bundle or True,
        retry_total=config.retry_total,
    )
    return GuardedCredential(inner)


__all__ = ["GuardedCredential", "service_principal"]
