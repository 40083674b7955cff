"""AZURE_DELEGATED: the service's own Entra app, consented in the customer's tenant, signs
user-delegation SAS. Against HTTPS Azurite (--oauth basic) and the local token endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.azurite_support import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    APP_OBJECT_ID,
    ROLELESS_TENANT,
    TENANT_ID,
    UNCONSENTED_TENANT,
    AppCertificate,
    Azurite,
    Tls,
    TokenEndpoint,
    context,
    delegated_env,
    delegated_secret,
    make_credential,
    make_mount,
    options,
    provider,
    sdk_service,
    tamper,
    unique,
)
from azure.storage.blob import ContainerClient

from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind, ListRequest, Method, MountState
from bucketvault.providers.azure.handles import ServicePrincipalHandle
from bucketvault.providers.azure.onboarding import TENANT_PLACEHOLDER
from bucketvault.providers.azure.settings import AzureConfig

pytestmark = pytest.mark.azurite

KIND = CredentialKind("AZURE_DELEGATED")


env = delegated_env


@pytest.fixture(scope="module")
def container(azurite_oauth: Azurite, tls: Tls) -> Iterator[ContainerClient]:
    client = sdk_service(azurite_oauth.account_url, connection_verify=str(tls.cert))
    created = client.create_container(unique())
    created.upload_blob("x/plan.txt", b"plan")
    created.upload_blob("x/two.txt", b"two")
    yield created
    created.delete_container()


def _sign_fetch_list(
    settings: dict[str, str], account_url: str, container: ContainerClient, verify: str
) -> None:
    p = provider(settings)
    prepared = p.prepare(context(KIND), delegated_secret(account_url))
    assert prepared.metadata["principal_object_id"] == APP_OBJECT_ID
    assert prepared.metadata["application_id"] == APP_CLIENT_ID
    assert prepared.metadata["tenant_id"] == TENANT_ID
    handle = p.open(make_credential(KIND, dict(prepared.metadata)), delegated_secret(account_url))
    # One handle and one delegation-key cache for both Entra kinds.
    assert isinstance(handle.inner, ServicePrincipalHandle)
    mount = make_mount(container.container_name, prefix="x/")
    a, b = handle.sign(mount, ["x/plan.txt", "x/two.txt"], options())
    assert parse_qs(urlsplit(a.url).query)["skoid"] == [APP_OBJECT_ID]
    assert parse_qs(urlsplit(a.url).query)["sktid"] == [TENANT_ID]
    assert requests.get(a.url, timeout=10, verify=verify).content == b"plan"
    assert requests.get(b.url, timeout=10, verify=verify).content == b"two"
    assert requests.get(tamper(a.url), timeout=10, verify=verify).status_code == 403
    pages = list(handle.list(mount, ListRequest("x/", "", 0, ""), options()))
    entries = [e for page in pages for e in page.entries]
    assert [e.key for e in entries] == ["x/plan.txt", "x/two.txt"]
    assert requests.get(entries[1].url, timeout=10, verify=verify).content == b"two"
    assert handle.check(mount).state is MountState.AVAILABLE
    assert handle.delegation_keys(mount).fetches == 1
    handle.close()


def test_prepare_sign_fetch_and_list_with_an_app_secret(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint, container: ContainerClient
) -> None:
    before = len(token_endpoint.requests)
    _sign_fetch_list(env(token_endpoint, tls), azurite_oauth.account_url, container, str(tls.cert))
    asked = token_endpoint.requests[before:]
    # The service's app asked in the customer's tenant, for storage, with its secret.
    assert asked and all(r["client_id"] == APP_CLIENT_ID for r in asked)
    assert {r["tenant"] for r in asked} == {TENANT_ID}
    assert all("storage.azure.com" in r["scope"] for r in asked)
    assert all(r["client_assertion_type"] == "" for r in asked)


def test_prepare_sign_fetch_and_list_with_an_app_certificate(
    azurite_oauth: Azurite,
    tls: Tls,
    token_endpoint: TokenEndpoint,
    container: ContainerClient,
    app_cert: AppCertificate,
) -> None:
    # azure-identity's CertificateCredential signs a client assertion (RS256 JWT); the
    # token endpoint verifies it with the certificate's public key.
    settings = env(
        token_endpoint, tls, BUCKETVAULT_AZURE_APP_CERTIFICATE_FILE=str(app_cert.pem_file)
    )
    before = len(token_endpoint.requests)
    _sign_fetch_list(settings, azurite_oauth.account_url, container, str(tls.cert))
    asked = token_endpoint.requests[before:]
    assert asked and all(r["client_assertion_type"].endswith("jwt-bearer") for r in asked)


def test_an_unconsented_tenant_gets_the_consent_url(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    p = provider(env(token_endpoint, tls))
    secret = delegated_secret(azurite_oauth.account_url, UNCONSENTED_TENANT)
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), secret)
    error = info.value
    assert error.reason == "AZURE_APP_NOT_CONSENTED"
    consent = f"{token_endpoint.authority}/{UNCONSENTED_TENANT}/adminconsent?client_id="
    assert consent + APP_CLIENT_ID in error.message
    assert "AADSTS700016" in error.message
    assert APP_CLIENT_SECRET not in str(error)
    # CheckMount of a stored credential in that state says the same.
    handle = p.open(make_credential(KIND), secret)
    result = handle.check(make_mount("any"))
    assert (result.state, result.reason) == (MountState.MISCONFIGURED, "AZURE_APP_NOT_CONSENTED")
    assert "user-delegation SAS under container any" in result.scope
    handle.close()


def test_a_consented_app_without_roles_is_told_which_roles(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    p = provider(env(token_endpoint, tls))
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), delegated_secret(azurite_oauth.account_url, ROLELESS_TENANT))
    assert info.value.reason == "AZURE_ROLE_MISSING"
    assert "Storage Blob Delegator and Storage Blob Data Reader" in info.value.message
    assert APP_CLIENT_ID in info.value.message


def test_a_wrong_app_secret_is_an_auth_failure_that_never_echoes_it(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    wrong = "wrong-app-secret-value"
    p = provider(env(token_endpoint, tls, BUCKETVAULT_AZURE_APP_CLIENT_SECRET=wrong))
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), delegated_secret(azurite_oauth.account_url))
    assert info.value.reason == "AZURE_AUTH_FAILED"
    assert "AADSTS7000215" in info.value.message
    assert wrong not in str(info.value)


def test_without_an_app_the_kind_is_refused_with_what_to_configure(azurite: Azurite) -> None:
    p = provider({})
    # https: a bearer kind refuses an http account URL first (BEARER_NEEDS_HTTPS); nothing
    # is contacted before the missing app is found.
    account = azurite.account_url.replace("http://", "https://", 1)
    with pytest.raises(FailedPrecondition) as info:
        p.prepare(context(KIND), delegated_secret(account))
    assert info.value.reason == "AZURE_APP_NOT_CONFIGURED"
    assert "BUCKETVAULT_AZURE_APP_CLIENT_ID" in info.value.message
    with pytest.raises(FailedPrecondition):
        p.provider.onboarding(KIND, "acme")  # type: ignore[attr-defined]


def test_onboarding_names_the_app_the_consent_url_and_the_roles(
    tls: Tls, token_endpoint: TokenEndpoint
) -> None:
    p = provider(env(token_endpoint, tls)).provider
    guide = p.onboarding(KIND, "acme")  # type: ignore[attr-defined]
    assert guide is not None
    assert guide.kind == KIND and guide.identity == APP_CLIENT_ID
    consent = guide.links["admin_consent_url"]
    assert consent == (
        f"{token_endpoint.authority}/{TENANT_PLACEHOLDER}/adminconsent?client_id={APP_CLIENT_ID}"
    )
    for role, link in (
        ("Storage Blob Delegator", "role_assignment_delegator"),
        ("Storage Blob Data Reader", "role_assignment_data_reader"),
    ):
        command = guide.links[link]
        assert command.startswith("az role assignment create")
        assert f'--assignee "{APP_CLIENT_ID}"' in command and f'--role "{role}"' in command
        assert "Microsoft.Storage/storageAccounts/" in command
    assert len(guide.steps) == 3 and "consent" in guide.steps[0]
    assert all(APP_CLIENT_SECRET not in text for text in (*guide.steps, *guide.links.values()))
    for other in ("AZURE_SAS", "AZURE_SHARED_KEY", "AZURE_SERVICE_PRINCIPAL"):
        assert p.onboarding(CredentialKind(other), "acme") is None  # type: ignore[attr-defined]


def test_the_app_settings_fail_fast_and_hide_the_secret(tmp_path: Path) -> None:
    base = {"BUCKETVAULT_AZURE_APP_CLIENT_ID": APP_CLIENT_ID}
    config = AzureConfig.from_env({**base, "BUCKETVAULT_AZURE_APP_CLIENT_SECRET": "s3cr3t-x"})
    assert config.app is not None and "s3cr3t-x" not in repr(config)
    assert AzureConfig.from_env({}).app is None
    not_pem = tmp_path / "bad.pem"
    not_pem.write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    for bad in (
        base,  # neither secret nor certificate
        {
            **base,
            "BUCKETVAULT_AZURE_APP_CLIENT_SECRET": "x",
            "BUCKETVAULT_AZURE_APP_CERTIFICATE_FILE": "f",
        },
        {"BUCKETVAULT_AZURE_APP_CLIENT_SECRET": "x"},  # no client id
        {**base, "BUCKETVAULT_AZURE_APP_CERTIFICATE_FILE": str(tmp_path / "missing.pem")},
        {**base, "BUCKETVAULT_AZURE_APP_CERTIFICATE_FILE": str(not_pem)},
        {
            "BUCKETVAULT_AZURE_APP_CLIENT_ID": "not a/guid",
            "BUCKETVAULT_AZURE_APP_CLIENT_SECRET": "x",
        },
    ):
        with pytest.raises(InvalidArgument) as info:
            AzureConfig.from_env(bad)
        assert info.value.reason == "INVALID_CONFIG"
        assert "c2VjcmV0" not in info.value.message


def test_put_urls_need_create_write_and_work(
    azurite_oauth: Azurite, tls: Tls, token_endpoint: TokenEndpoint, container: ContainerClient
) -> None:
    handle = provider(env(token_endpoint, tls)).open(
        make_credential(KIND), delegated_secret(azurite_oauth.account_url)
    )
    (up,) = handle.sign(make_mount(container.container_name), ["x/up.bin"], options(Method.PUT))
    done = requests.put(
        up.url, data=b"up", headers=dict(up.required_headers), timeout=10, verify=str(tls.cert)
    )
    assert done.status_code == 201
    assert container.download_blob("x/up.bin").readall() == b"up"
    handle.close()


def test_debug_logs_never_carry_the_app_secret(
    azurite_oauth: Azurite,
    tls: Tls,
    token_endpoint: TokenEndpoint,
    container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    p = provider(env(token_endpoint, tls))
    p.prepare(context(KIND), delegated_secret(azurite_oauth.account_url))
    with pytest.raises(FailedPrecondition):
        p.prepare(context(KIND), delegated_secret(azurite_oauth.account_url, UNCONSENTED_TENANT))
    handle = p.open(make_credential(KIND), delegated_secret(azurite_oauth.account_url))
    handle.sign(make_mount(container.container_name), ["x/plan.txt"], options())
    handle.close()
    assert caplog.records, "DEBUG logging captured nothing: the check would prove nothing"
    assert APP_CLIENT_SECRET not in caplog.text
    assert all(APP_CLIENT_SECRET not in str(r.args) for r in caplog.records)
