"""The Azure Blob provider: AZURE_SAS, AZURE_SHARED_KEY, AZURE_SERVICE_PRINCIPAL and
AZURE_DELEGATED (the last two differ only in where the Entra credential comes from)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, FailedPrecondition, PermissionDenied
from bucketvault.models import (
    Credential,
    CredentialKind,
    Onboarding,
    Preparation,
    RegistrationContext,
)
from bucketvault.providers.azure.credentials import (
    GuardedCredential,
    delegated_app,
    require_app,
    service_principal,
)
from bucketvault.providers.azure.errors import translate
from bucketvault.providers.azure.handles import (
    AzureHandle,
    SasHandle,
    ServicePrincipalHandle,
    SharedKeyHandle,
    fetch_delegation_key,
)
from bucketvault.providers.azure.kinds import (
    AZURE_DELEGATED,
    AZURE_SAS,
    KINDS,
    Account,
    DelegatedSecret,
    SasSecret,
    ServicePrincipalSecret,
    SharedKeySecret,
    parse_sas_time,
)
from bucketvault.providers.azure.onboarding import ROLES, delegated_onboarding
from bucketvault.providers.azure.settings import MAX_SAS_LIFETIME, AzureConfig
from bucketvault.providers.kinds import KindSpec, ParsedSecret


@dataclass(frozen=True)
class AzureProvider:
    """Serves the four Azure credential kinds."""

    name: ClassVar[str] = "azure"
    kinds: ClassVar[Mapping[CredentialKind, KindSpec]] = KINDS
    max_url_seconds: ClassVar[int] = MAX_SAS_LIFETIME

    config: AzureConfig
    clock: Clock

    # -- registration --------------------------------------------------------------------

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """Shared keys, service principals and delegated access: one real call to the account."""
        if isinstance(secret, SharedKeySecret):
            return self._prepare_shared_key(secret)
        if isinstance(secret, ServicePrincipalSecret):
            credential = service_principal(
                self.config, secret.tenant_id, secret.client_id, secret.client_secret
            )
            return self._prove_delegation(secret.account, credential)
        if isinstance(secret, DelegatedSecret):
            return self._prepare_delegated(secret)
        # A customer SAS was checked by its kind (expiry, permissions): nothing to call.
        return Preparation()

    def _prepare_shared_key(self, secret: SharedKeySecret) -> Preparation:
        handle = self._shared_key_handle(secret)
        try:
            with BlobServiceClient(
                secret.account.url,
                credential=handle.sdk_credential,
                **self.config.transport_options(),
            ) as service:
                service.get_service_properties()
        except AzureError as exc:
            raise _refused(translate(exc, "verifying the account key")) from exc
        finally:
            handle.close()
        return Preparation()

    def _prove_delegation(self, account: Account, credential: GuardedCredential) -> Preparation:
        """A token and a user delegation key: what signing will need, proven once."""
        now = self.clock.now()
        try:
            key = fetch_delegation_key(
                self.config,
                account.url,
                credential,
                (now - timedelta(minutes=5)).replace(microsecond=0),
                (now + timedelta(hours=1)).replace(microsecond=0),
            )
        except BucketVaultError as exc:
            raise _refused(exc, credential, account) from exc
        finally:
            credential.close()
        return Preparation(metadata={"principal_object_id": key.signed_oid})

    def _prepare_delegated(self, secret: DelegatedSecret) -> Preparation:
        credential = delegated_app(self.config, secret.tenant_id)
        proven = self._prove_delegation(secret.account, credential)
        # Which of the service's apps the customer granted: rotating to another app
        # would need their consent again, so the record says which one it was.
        app = {"application_id": credential.identity.client_id}
        return Preparation(metadata={**proven.metadata, **app}, warnings=proven.warnings)

    def onboarding(self, kind: CredentialKind, tenant: str) -> Onboarding | None:
        """AZURE_DELEGATED: consent to the service's app, then its roles; None otherwise.

        ``tenant`` is bucketvault's tenant, not the customer's Entra tenant: the consent
        URL carries a placeholder for the latter.
        """
        if kind != AZURE_DELEGATED:
            return None
        app = require_app(self.config)
        return delegated_onboarding(kind, self.config.authority_host, app.client_id)

    # -- reading -------------------------------------------------------------------------

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """SAS credentials: 'expires within N days' or 'expired', by the injected clock."""
        if credential.kind != AZURE_SAS:
            return ()
        raw = credential.metadata.get("sas_expiry", "")
        if not raw:
            return ()
        expiry = parse_sas_time(raw, field="expiry")
        now = self.clock.now()
        if now >= expiry:
            return (f"the SAS expired at {raw}: signing is refused (SAS_EXPIRED)",)
        days = self.config.sas_expiry_warning_days
        if expiry - now <= timedelta(days=days):
            return (f"the SAS expires within {days} days (at {raw})",)
        return ()

    def _shared_key_handle(self, secret: SharedKeySecret) -> SharedKeyHandle:
        return SharedKeyHandle(self.config, self.clock, secret.account, secret.key)

    def open(self, credential: Credential, secret: ParsedSecret) -> AzureHandle:
        """Build the handle for one credential."""
        if isinstance(secret, SasSecret):
            return SasHandle(self.config, self.clock, secret.account, secret.sas)
        if isinstance(secret, SharedKeySecret):
            return self._shared_key_handle(secret)
        if isinstance(secret, ServicePrincipalSecret):
            entra = service_principal(
                self.config, secret.tenant_id, secret.client_id, secret.client_secret
            )
            return ServicePrincipalHandle(self.config, self.clock, secret.account, entra)
        if isinstance(secret, DelegatedSecret):
            # The same handle and key cache: only the Entra credential is the service's own.
            entra = delegated_app(self.config, secret.tenant_id)
            return ServicePrincipalHandle(self.config, self.clock, secret.account, entra)
        raise FailedPrecondition(
            f"the azure provider does not serve {credential.kind.value}", reason="WRONG_PROVIDER"
        )


def _refused(
    exc: BucketVaultError,
    credential: GuardedCredential | None = None,
    account: Account | None = None,
) -> BucketVaultError:
    """At registration a refusal means the credential is wrong, not that access is denied."""
    if not isinstance(exc, PermissionDenied):
        return exc
    identity = credential.identity if credential is not None else None
    if identity is not None and identity.delegated and account is not None:
        # The token came, the key did not: the app is consented but holds no role.
        return FailedPrecondition(
            f"the storage account refused the application {identity.client_id} a user "
            f"delegation key ({exc.message}): assign {' and '.join(ROLES)} on the account "
            f"{account.name} to the app",
            reason="AZURE_ROLE_MISSING",
        )
    return FailedPrecondition(exc.message, reason="AZURE_AUTH_FAILED")


__all__ = ["AzureProvider"]
