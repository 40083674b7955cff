"""Every kind's validation: a clear INVALID_ARGUMENT naming the field, never the value,
and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from core.secrets_fixtures import KINDS, sample

from bucketvault import errors
from bucketvault.testing.server import RunningServer

SECRET_MARK = "Zq9-LEAKCHECK-7f"


def _with(kind: str, **changes: Any) -> dict[str, Any]:
    doc = dict(sample(kind))
    for k, v in changes.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


CASES = [
    ("AWS_ROLE", _with("AWS_ROLE", role_arn=None), "secret.role_arn"),
    (
        "AWS_ROLE",
        _with("AWS_ROLE", role_arn=f"arn:aws:iam::12:user/{SECRET_MARK}"),
        "secret.role_arn",
    ),
    ("AWS_ROLE", _with("AWS_ROLE", role_arn=123), "secret.role_arn"),
    ("AWS_ROLE", _with("AWS_ROLE", external_id=SECRET_MARK), "secret.external_id"),
    ("AWS_ROLE", _with("AWS_ROLE", surprise=SECRET_MARK), "sealed_secret"),
    ("S3_ACCESS_KEY", _with("S3_ACCESS_KEY", access_key_id=None), "secret.access_key_id"),
    ("S3_ACCESS_KEY", _with("S3_ACCESS_KEY", secret_access_key=None), "secret.secret_access_key"),
    ("S3_ACCESS_KEY", _with("S3_ACCESS_KEY", secret_access_key=["x"]), "secret.secret_access_key"),
    (
        "S3_ACCESS_KEY",
        _with("S3_ACCESS_KEY", endpoint_url=f"ftp://{SECRET_MARK}"),
        "secret.endpoint_url",
    ),
    ("S3_ACCESS_KEY", _with("S3_ACCESS_KEY", region="Not A Region"), "secret.region"),
    ("GCS_SERVICE_ACCOUNT", _with("GCS_SERVICE_ACCOUNT", type="user"), "secret.type"),
    ("GCS_SERVICE_ACCOUNT", _with("GCS_SERVICE_ACCOUNT", client_email=None), "secret.client_email"),
    (
        "GCS_SERVICE_ACCOUNT",
        _with(
            "GCS_SERVICE_ACCOUNT",
            private_key=f"-----BEGIN PRIVATE KEY-----\n{SECRET_MARK}\n-----END PRIVATE KEY-----\n",
        ),
        "secret.private_key",
    ),
    (
        "GCS_SERVICE_ACCOUNT",
        _with("GCS_SERVICE_ACCOUNT", token_uri="https://evil.example/token"),
        "secret.token_uri",
    ),
    ("GCS_HMAC", _with("GCS_HMAC", access_id=None), "secret.access_id"),
    ("GCS_HMAC", _with("GCS_HMAC", secret=""), "secret.secret"),
    ("AZURE_SAS", _with("AZURE_SAS", account_url=None), "secret.account_url"),
    (
        "AZURE_SAS",
        _with("AZURE_SAS", sas_token=f"sv=2025-05-05&sig={SECRET_MARK}"),
        "secret.sas_token",
    ),
    (
        "AZURE_SAS",
        _with(
            "AZURE_SAS",
            sas_token=f"sv=2025-05-05&sr=c&sp=wl&se=2099-01-01T00:00:00Z&sig={SECRET_MARK}",
        ),
        "secret.sas_token",
    ),
    (
        "AZURE_SAS",
        _with("AZURE_SAS", sas_token=f"sv=2025-05-05&sr=c&sp=rl&se=notadate&sig={SECRET_MARK}"),
        "secret.sas_token",
    ),
    (
        "AZURE_SHARED_KEY",
        _with("AZURE_SHARED_KEY", account_key=f"{SECRET_MARK}!!"),
        "secret.account_key",
    ),
    ("AZURE_SHARED_KEY", _with("AZURE_SHARED_KEY", account_name="Bad_Name"), "secret.account_name"),
    (
        "AZURE_SERVICE_PRINCIPAL",
        _with("AZURE_SERVICE_PRINCIPAL", client_secret=None),
        "secret.client_secret",
    ),
    (
        "AZURE_SERVICE_PRINCIPAL",
        _with("AZURE_SERVICE_PRINCIPAL", tenant_id="not a tenant!"),
        "secret.tenant_id",
    ),
]


@pytest.mark.parametrize(
    ("kind", "doc", "field"), CASES, ids=[f"{k}-{f}-{i}" for i, (k, _, f) in enumerate(CASES)]
)
def test_invalid_secret_names_the_field_and_writes_nothing(
    server: RunningServer, kind: str, doc: dict[str, Any], field: str
) -> None:
    c = server.client()
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_credential("acme", kind, doc, idempotency_key="k1")
    assert exc.value.field == field
    assert exc.value.reason
    assert SECRET_MARK not in exc.value.message
    assert SECRET_MARK not in repr(exc.value)
    assert list(c.list_credentials("acme")) == []


def test_expired_sas_is_a_failed_precondition(server: RunningServer) -> None:
    c = server.client()
    token = f"sv=2025-05-05&sr=c&sp=rl&se=2001-01-01T00:00:00Z&sig={SECRET_MARK}"
    with pytest.raises(errors.FailedPrecondition) as exc:
        c.register_credential("acme", "AZURE_SAS", _with("AZURE_SAS", sas_token=token))
    assert exc.value.reason == "SAS_EXPIRED"
    assert SECRET_MARK not in exc.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_registers_with_non_secret_metadata(server: RunningServer, kind: str) -> None:
    c = server.client()
    cred = c.register_credential("acme", kind, sample(kind, canary=SECRET_MARK), display_name=kind)
    assert c.get_credential("acme", cred.credential_id).display_name == kind
    assert SECRET_MARK not in str(cred)
    expected = {
        "AWS_ROLE": "role_arn",
        "S3_ACCESS_KEY": "access_key_id",
        "GCS_SERVICE_ACCOUNT": "client_email",
        "GCS_HMAC": "access_id",
        "AZURE_SAS": "sas_expiry",
        "AZURE_SHARED_KEY": "account_name",
        "AZURE_SERVICE_PRINCIPAL": "client_id",
        "GCS_IMPERSONATION": "service_account",
        "AZURE_DELEGATED": "tenant_id",
    }[kind]
    assert cred.metadata[expected]


def test_request_field_errors(server: RunningServer) -> None:
    c = server.client()
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_credential("", "GCS_HMAC", sample("GCS_HMAC"))
    assert exc.value.field == "tenant"
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_credential("Bad Tenant", "GCS_HMAC", sample("GCS_HMAC"))
    assert exc.value.field == "tenant"
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_sealed(
            "acme", "CREDENTIAL_KIND_UNSPECIFIED", c.seal("acme", "GCS_HMAC", sample("GCS_HMAC"))
        )
    assert exc.value.field == "kind"


# The one parser per kind: registration refuses what the provider could not sign with.
# (Before the redesign the core accepted both of these and the provider disagreed later.)
DISAGREEMENTS = [
    # An Azure host with a path: the core used to record account "acct" while the
    # provider signed as "photos".
    (
        "AZURE_SAS",
        _with("AZURE_SAS", account_url="https://acct.blob.core.windows.net/photos"),
        "secret.account_url",
        "INVALID_ACCOUNT_URL",
    ),
    (
        "AZURE_SERVICE_PRINCIPAL",
        _with("AZURE_SERVICE_PRINCIPAL", account_url="https://acct.blob.core.windows.net/photos"),
        "secret.account_url",
        "INVALID_ACCOUNT_URL",
    ),
    (
        "AZURE_SHARED_KEY",
        _with("AZURE_SHARED_KEY", account_name="other"),
        "secret.account_name",
        "ACCOUNT_NAME_MISMATCH",
    ),
    # A blob SAS (sr=b) grants one blob: the core used to accept it, the provider refused.
    (
        "AZURE_SAS",
        _with(
            "AZURE_SAS",
            sas_token=f"sv=2025-05-05&sr=b&sp=r&se=2099-01-01T00:00:00Z&sig={SECRET_MARK}",
        ),
        "secret.sas_token",
        "SAS_RESOURCE_UNSUPPORTED",
    ),
]


@pytest.mark.parametrize(("kind", "doc", "field", "reason"), DISAGREEMENTS)
def test_registration_refuses_what_the_provider_could_not_use(
    server: RunningServer, kind: str, doc: dict[str, Any], field: str, reason: str
) -> None:
    c = server.client()
    with pytest.raises(errors.InvalidArgument) as exc:
        c.register_credential("acme", kind, doc)
    assert (exc.value.field, exc.value.reason) == (field, reason)
    assert SECRET_MARK not in exc.value.message
    assert list(c.list_credentials("acme")) == []


def test_account_metadata_is_what_the_provider_signs_as(server: RunningServer) -> None:
    from bucketvault.providers.azure.kinds import account_name_from_url

    c = server.client()
    cred = c.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"))
    assert cred.metadata["account_name"] == "acct"
    assert account_name_from_url(cred.metadata["account_url"]) == "acct"
    assert account_name_from_url("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"response_content_type": "text/plain\r\nX-Evil: 1"}, "response_content_type"),
        ({"response_content_disposition": "a" * 1025}, "response_content_disposition"),
        ({"content_type": "image/png"}, "content_type"),  # PUT only
    ],
)
def test_bad_overrides_are_refused_before_any_signing(
    server: RunningServer, overrides: dict[str, str], field: str
) -> None:
    c = server.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
    with pytest.raises(errors.InvalidArgument) as exc:
        c.sign_url("acme", mount.mount_id, "k.jpg", **overrides)
    assert (exc.value.reason, exc.value.field) == ("INVALID_FIELD", field)
