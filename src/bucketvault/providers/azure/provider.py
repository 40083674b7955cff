"""The Azure Blob provider: AZURE_SAS, AZURE_SHARED_KEY, AZURE_SERVICE_PRINCIPAL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError, FailedPrecondition, PermissionDenied
from bucketvault.models import Credential, CredentialKind, Preparation, RegistrationContext
from bucketvault.providers.azure.credentials import service_principal
from bucketvault.providers.azure.errors import translate
from bucketvault.providers.azure.handles import (
    AzureHandle,
    SasHandle,
    ServicePrincipalHandle,
    SharedKeyHandle,
    fetch_delegation_key,
)
from bucketvault.providers.azure.kinds import (
    AZURE_SAS,
    KINDS,
    SasSecret,
    ServicePrincipalSecret,
    SharedKeySecret,
    parse_sas_time,
)
from bucketvault.providers.azure.settings import MAX_SAS_LIFETIME, AzureConfig
from bucketvault.providers.kinds import KindSpec, ParsedSecret


@dataclass(frozen=True)
class AzureProvider:
    """Serves the three Azure credential kinds."""

    name: ClassVar[str] = "azure"
    kinds: ClassVar[Mapping[CredentialKind, KindSpec]] = KINDS
    max_url_seconds: ClassVar[int] = MAX_SAS_LIFETIME

    config: AzureConfig
    clock: Clock

    # -- registration --------------------------------------------------------------------

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """Shared keys and service principals: one real call to the account."""
        if isinstance(secret, SharedKeySecret):
            return self._prepare_shared_key(secret)
        if isinstance(secret, ServicePrincipalSecret):
            return self._prepare_service_principal(secret)
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

    def _prepare_service_principal(self, secret: ServicePrincipalSecret) -> Preparation:
        credential = service_principal(
            self.config, secret.tenant_id, secret.client_id, secret.client_secret
        )
        now = self.clock.now()
        try:
            key = fetch_delegation_key(
                self.config,
                secret.account.url,
                credential,
                (now - timedelta(minutes=5)).replace(microsecond=0),
                (now + timedelta(hours=1)).replace(microsecond=0),
            )
        except BucketVaultError as exc:
            raise _refused(exc) from exc
        finally:
            credential.close()
        return Preparation(metadata={"principal_object_id": key.signed_oid})

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
        raise FailedPrecondition(
            f"the azure provider does not serve {credential.kind.value}", reason="WRONG_PROVIDER"
        )


def _refused(exc: BucketVaultError) -> BucketVaultError:
    """At registration a refusal means the credential is wrong, not that access is denied."""
    if isinstance(exc, PermissionDenied):
        return FailedPrecondition(exc.message, reason="AZURE_AUTH_FAILED")
    return exc


__all__ = ["AzureProvider"]
