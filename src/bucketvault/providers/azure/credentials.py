"""Entra credentials (a customer's service principal, or the service's own app in a
customer's tenant), with failures made recognisable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from azure.identity import CertificateCredential, ClientSecretCredential

from bucketvault.errors import BucketVaultError, FailedPrecondition
from bucketvault.providers.azure.errors import TokenError, token_outage, translate
from bucketvault.providers.azure.settings import DEFAULT_AUTHORITY, AzureConfig, EntraApp

# Entra's error codes travel in the token endpoint's error_description; only the number
# is kept, because the description names tenants, apps and trace ids.
_AADSTS = re.compile(r"AADSTS(\d{4,7})")


class _TokenSource(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EntraIdentity:
    """Who asks for tokens where (no secret): what a failure message may name."""

    tenant_id: str
    client_id: str
    authority: str
    # The service's own app, used in a customer's tenant: a refusal there usually means
    # the customer has not consented to it yet.
    delegated: bool = False


class GuardedCredential:
    """Wraps an azure-identity credential so token failures surface as TokenError, not 403s."""

    def __init__(self, inner: _TokenSource, identity: EntraIdentity) -> None:
        self._inner = inner
        self.identity = identity

    def __repr__(self) -> str:
        return f"GuardedCredential(client_id={self.identity.client_id!r}, <hidden>)"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Delegate to azure-identity; any failure becomes our error (cause chained).

        Raised as BucketVaultError, not TokenError: pipelines (listing) catch only
        azure-core's errors, so anything else reached the caller as INTERNAL."""
        try:
            return self._inner.get_token(*scopes, **kwargs)
        except BucketVaultError:
            raise  # the egress guard's refusal already says what happened
        except Exception as exc:
            outage = token_outage(exc, self.identity.authority)
            if outage is not None:
                raise outage from exc
            found = _AADSTS.search(str(exc))
            refused = TokenError(
                type(exc).__name__, code=found.group(1) if found else "", identity=self.identity
            )
            raise translate(refused, "getting an Entra token") from exc

    def close(self) -> None:
        """Close the underlying HTTP pipeline."""
        self._inner.close()


def _options(config: AzureConfig) -> dict[str, Any]:
    return {
        "authority": config.authority_host,
        # Instance discovery asks login.microsoftonline.com about the authority: a call
        # out of the deployment for nothing when the authority is configured explicitly.
        "disable_instance_discovery": config.authority_host != DEFAULT_AUTHORITY,
        "connection_verify": config.ca_bundle or True,
        "retry_total": config.retry_total,
        # Entra token calls (the authority) pass the egress guard; azure-identity's
        # pipeline has no redirect policy and the transport sends allow_redirects=False.
        "transport": config.transport(),
    }


def service_principal(
    config: AzureConfig, tenant_id: str, client_id: str, client_secret: str
) -> GuardedCredential:
    """A customer's own app: a client-secret credential against the configured authority."""
    inner = ClientSecretCredential(tenant_id, client_id, client_secret, **_options(config))
    return GuardedCredential(inner, EntraIdentity(tenant_id, client_id, config.authority_host))


def require_app(config: AzureConfig) -> EntraApp:
    """The service's own app, or why AZURE_DELEGATED cannot be served here."""
    if config.app is None:
        raise FailedPrecondition(
            "this server has no Entra application for delegated access: set "
            "BUCKETVAULT_AZURE_APP_CLIENT_ID and a secret or certificate",
            reason="AZURE_APP_NOT_CONFIGURED",
        )
    return config.app


def delegated_app(config: AzureConfig, tenant_id: str) -> GuardedCredential:
    """The service's own app, signing in to the customer's tenant (AZURE_DELEGATED)."""
    app = require_app(config)
    inner: _TokenSource
    if app.certificate_pem:
        inner = CertificateCredential(
            tenant_id, app.client_id, certificate_data=app.certificate_pem, **_options(config)
        )
    else:
        inner = ClientSecretCredential(
            tenant_id, app.client_id, app.client_secret, **_options(config)
        )
    identity = EntraIdentity(tenant_id, app.client_id, config.authority_host, delegated=True)
    return GuardedCredential(inner, identity)


__all__ = [
    "EntraIdentity",
    "GuardedCredential",
    "delegated_app",
    "require_app",
    "service_principal",
]
