"""What a customer does before AZURE_DELEGATED works: consent to the service's app in
their tenant, then give that app two roles on the storage account.

The admin consent endpoint (``{authority}/{tenant}/adminconsent?client_id=...``) creates
the app's service principal in the customer's tenant; no API permission is requested,
because storage access comes from Azure RBAC roles, not from consented scopes. The roles:
Storage Blob Delegator (Get User Delegation Key) and Storage Blob Data Reader (what a
read SAS signed with that key may do; a user-delegation SAS never grants more than the
signer holds).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from bucketvault.models import CredentialKind, Onboarding

# Stands in for the customer's Entra tenant id where we do not know it yet.
TENANT_PLACEHOLDER = "{customer-tenant-id}"
ROLES = ("Storage Blob Delegator", "Storage Blob Data Reader")
_SCOPE = (
    "/subscriptions/{subscription-id}/resourceGroups/{resource-group}"
    "/providers/Microsoft.Storage/storageAccounts/{account}"
)


def consent_url(authority: str, client_id: str, tenant_id: str = "") -> str:
    """The admin consent URL of the app in a tenant (a placeholder when unknown)."""
    tenant = quote(tenant_id, safe="") if tenant_id else TENANT_PLACEHOLDER
    return f"{authority.rstrip('/')}/{tenant}/adminconsent?{urlencode({'client_id': client_id})}"


def role_assignment_command(client_id: str, role: str) -> str:
    """The az CLI command giving the app one role on one storage account."""
    return f'az role assignment create --assignee "{client_id}" --role "{role}" --scope "{_SCOPE}"'


def delegated_onboarding(
    kind: CredentialKind, authority: str, client_id: str, tenant_id: str = ""
) -> Onboarding:
    """Consent, then roles, for the service's app identified by client_id."""
    url = consent_url(authority, client_id, tenant_id)
    where = f"tenant {tenant_id}" if tenant_id else "your tenant (put its id in the URL)"
    return Onboarding(
        kind=kind,
        identity=client_id,
        steps=(
            f"An administrator of {where} opens the admin consent URL and accepts: this "
            f"creates the service principal of application {client_id} in the tenant.",
            "On each storage account to mount, assign the application the roles "
            + " and ".join(ROLES)
            + " (a container scope is enough for Data Reader).",
            'Register an AZURE_DELEGATED credential: {"account_url": '
            '"https://<account>.blob.core.windows.net", "tenant_id": "<tenant id>"}.',
        ),
        links={
            "admin_consent_url": url,
            "role_assignment_delegator": role_assignment_command(client_id, ROLES[0]),
            "role_assignment_data_reader": role_assignment_command(client_id, ROLES[1]),
        },
    )


__all__ = [
    "ROLES",
    "TENANT_PLACEHOLDER",
    "consent_url",
    "delegated_onboarding",
    "role_assignment_command",
]
