"""The Azure Blob provider: AZURE_SAS, AZURE_SHARED_KEY, AZURE_SERVICE_PRINCIPAL."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from bucketvault.clock import Clock
from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from bucketvault.models import (
    Credential,
    CredentialKind,
    Preparation,
    RegistrationContext,
    SecretDocument,
)
from bucketvault.providers.azure.config import AzureConfig
from bucketvault.providers.azure.credentials import service_principal
from bucketvault.providers.azure.handles import (
    AzureHandle,
    SasHandle,
    ServicePrincipalHandle,
    SharedKeyHandle,
    fetch_delegation_key,
)
from bucketvault.providers.azure.sas_token import SasToken, parse_sas_time, parse_sas_token
from bucketvault.providers.azure.translate import translate
from bucketvault.urlpolicy import UrlPolicy

KINDS = frozenset(
    {
        CredentialKind.AZURE_SAS,
        CredentialKind.AZURE_SHARED_KEY,
        CredentialKind.AZURE_SERVICE_PRINCIPAL,
    }
)


def account_name_from_url(account_url: str) -> str:
    """'https://acct.blob.core.windows.net' -> 'acct'; path-style (emulator) -> first segment."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    segment = parts.path.strip("/").split("/")[0]
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = host == "localhost"
    if segment and (is_ip or parts.path.strip("/")):
        return segment
    return host.split(".")[0]


def _account_key(secret: SecretDocument) -> str:
    key = secret.str("account_key")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < 16:
        # Never echo the value: it is the secret.
        raise InvalidArgument(
            "account_key is not a base64 storage account key",
            reason="INVALID_ACCOUNT_KEY",
            field="account_key",
        )
    return key


class AzureProvider:
    """Serves the three Azure credential kinds."""

    name = "azure"
    kinds = KINDS

    def __init__(self, config: AzureConfig, clock: Clock, url_policy: UrlPolicy) -> None:
        self._config = config
        self._clock = clock
        # Kept for symmetry with the other providers: the core checks customer URLs
        # (account_url, mount endpoints) with it before they reach this provider.
        self._url_policy = url_policy

    # -- registration --------------------------------------------------------------------

    def prepare(self, context: RegistrationContext, secret: SecretDocument) -> Preparation:
        """Check the credential: SAS fields and lifetime, or one real call to Azure."""
        # The core has already checked account_url against the UrlPolicy.
        account_url = secret.str("account_url").rstrip("/")
        if secret.kind is CredentialKind.AZURE_SAS:
            return self._prepare_sas(parse_sas_token(secret.str("sas_token")))
        if secret.kind is CredentialKind.AZURE_SHARED_KEY:
            return self._prepare_shared_key(account_url, secret)
        if secret.kind is CredentialKind.AZURE_SERVICE_PRINCIPAL:
            return self._prepare_service_principal(account_url, secret)
        raise InvalidArgument(f"{secret.kind.value} is not an Azure kind", reason="WRONG_PROVIDER")

    def _prepare_sas(self, sas: SasToken) -> Preparation:
        now = self._clock.now()
        if now >= sas.expiry:
            raise FailedPrecondition("the SAS has already expired", reason="SAS_EXPIRED")
        if not sas.allows("r"):
            raise FailedPrecondition(
                "the SAS must allow read ('r' in sp)", reason="SAS_PERMISSION_MISSING"
            )
        warnings = []
        if not sas.allows("l"):
            warnings.append("the SAS lacks list permission ('l'): ListPrefix will be refused")
        if not sas.allows("cw"):
            warnings.append("the SAS allows no writes ('c'/'w'): PUT URLs will be refused")
        if sas.start is not None and sas.start > now:
            warnings.append(f"the SAS is not valid before {sas.start.isoformat()}")
        return Preparation(metadata={}, warnings=tuple(warnings))

    def _prepare_shared_key(self, account_url: str, secret: SecretDocument) -> Preparation:
        key = _account_key(secret)
        credential = {"account_name": secret.str("account_name"), "account_key": key}
        try:
            with BlobServiceClient(
                account_url, credential=credential, **self._config.transport_options()
            ) as service:
                service.get_service_properties()
        except AzureError as exc:
            raise _refused(translate(exc, "verifying the account key")) from exc
        return Preparation()

    def _prepare_service_principal(self, account_url: str, secret: SecretDocument) -> Preparation:
        credential = service_principal(
            self._config,
            secret.str("tenant_id"),
            secret.str("client_id"),
            secret.str("client_secret"),
        )
        now = self._clock.now()
        try:
            key = fetch_delegation_key(
                self._config,
                account_url,
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
        if credential.kind is not CredentialKind.AZURE_SAS:
            return ()
        raw = credential.metadata.get("sas_expiry", "")
        if not raw:
            return ()
        expiry = parse_sas_time(raw, field="expiry")
        now = self._clock.now()
        if now >= expiry:
            return (f"the SAS expired at {raw}: signing is refused (SAS_EXPIRED)",)
        days = self._config.sas_expiry_warning_days
        if expiry - now <= timedelta(days=days):
            return (f"the SAS expires within {days} days (at {raw})",)
        return ()

    def open(self, credential: Credential, secret: SecretDocument) -> AzureHandle:
        """Build the handle for one credential."""
        account_url = secret.str("account_url").rstrip("/")
        if secret.kind is CredentialKind.AZURE_SAS:
            return SasHandle(
                self._config, self._clock, account_url, parse_sas_token(secret.str("sas_token"))
            )
        if secret.kind is CredentialKind.AZURE_SHARED_KEY:
            return SharedKeyHandle(
                self._config,
                self._clock,
                account_url,
                secret.str("account_name") or account_name_from_url(account_url),
                _account_key(secret),
            )
        if secret.kind is CredentialKind.AZURE_SERVICE_PRINCIPAL:
            return ServicePrincipalHandle(
                self._config,
                self._clock,
                account_url,
                account_name_from_url(account_url),
                service_principal(
                    self._config,
                    secret.str("tenant_id"),
                    secret.str("client_id"),
                    secret.str("client_secret"),
                ),
            )
        raise InvalidArgument(f"{secret.kind.value} is not an Azure kind", reason="WRONG_PROVIDER")


def _refused(exc: BucketVaultError) -> BucketVaultError:
    """At registration a refusal means the credential is wrong, not that access is denied."""
    if isinstance(exc, PermissionDenied):
        return FailedPrecondition(exc.message, reason="AZURE_AUTH_FAILED")
    return exc


__all__ = ["KINDS", "AzureProvider", "account_name_from_url"]
