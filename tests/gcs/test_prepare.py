"""Registration of GCS credentials: keys are validated locally and never echoed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CLIENT_EMAIL,
    HMAC_ACCESS_ID,
    HMAC_SECRET,
    make_credential,
    make_mount,
    make_provider,
    open_handle,
    pem,
    sa_info,
)

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import (
    CredentialKind,
    Method,
    RegistrationContext,
)
from bucketvault.testing.providers import RawSecret, Ruled, UrlRequest
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI


def _ctx(kind: CredentialKind) -> RegistrationContext:
    return RegistrationContext(tenant="acme", credential_id="c-1", kind=kind)


@pytest.fixture
def provider() -> Ruled:
    return make_provider(FrozenClock())


def test_service_account_metadata(provider: Ruled, rsa_key: RSAPrivateKey) -> None:
    kind = CredentialKind("GCS_SERVICE_ACCOUNT")
    prep = provider.prepare(_ctx(kind), RawSecret(kind, sa_info(rsa_key)))
    assert dict(prep.metadata) == {
        "client_email": CLIENT_EMAIL,
        "project_id": "bv-test",
        "private_key_id": "0123456789abcdef",
        "token_uri": GOOGLE_TOKEN_URI,
        "rsa_key_bits": "2048",
    }
    assert prep.warnings == ()
    assert set(provider.provider.kinds) == {
        CredentialKind("GCS_SERVICE_ACCOUNT"),
        CredentialKind("GCS_HMAC"),
        CredentialKind("GCS_IMPERSONATION"),
    }


def _bad_keys(rsa_key: RSAPrivateKey) -> dict[str, tuple[dict[str, str], str]]:
    good = sa_info(rsa_key)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    secretish = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    return {
        "garbage private key": ({**good, "private_key": secretish}, "private_key"),
        "not RSA": ({**good, "private_key": pem(ec_key)}, "private_key"),  # type: ignore[arg-type]
        "short RSA": ({**good, "private_key": pem(small)}, "private_key"),
        "no client_email": ({**good, "client_email": ""}, "client_email"),
        "wrong type": ({**good, "type": "authorized_user"}, "type"),
        "token_uri not allowed": ({**good, "token_uri": "https://evil.example/token"}, "token_uri"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "garbage private key",
        "not RSA",
        "short RSA",
        "no client_email",
        "wrong type",
        "token_uri not allowed",
    ],
)
def test_bad_service_account_keys_are_refused_without_echo(
    provider: Ruled, rsa_key: RSAPrivateKey, case: str
) -> None:
    fields, field = _bad_keys(rsa_key)[case]
    kind = CredentialKind("GCS_SERVICE_ACCOUNT")
    with pytest.raises(InvalidArgument) as info:
        provider.prepare(_ctx(kind), RawSecret(kind, fields))
    assert info.value.field == f"secret.{field}"
    text = str(info.value) + repr(info.value) + repr(info.value.__cause__ or "")
    assert "TOPSECRETMATERIAL" not in str(info.value)
    assert "PRIVATE KEY" not in text.replace("private_key", "")


def test_hmac_metadata_and_validation(provider: Ruled) -> None:
    kind = CredentialKind("GCS_HMAC")
    prep = provider.prepare(
        _ctx(kind), RawSecret(kind, {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET})
    )
    assert dict(prep.metadata) == {"access_id": HMAC_ACCESS_ID}
    for fields, field in (
        ({"access_id": "", "secret": HMAC_SECRET}, "access_id"),
        ({"access_id": "has space", "secret": HMAC_SECRET}, "access_id"),
        ({"access_id": HMAC_ACCESS_ID, "secret": ""}, "secret"),
    ):
        with pytest.raises(InvalidArgument) as info:
            provider.prepare(_ctx(kind), RawSecret(kind, fields))
        assert info.value.field == f"secret.{field}"
        assert HMAC_SECRET not in str(info.value)


def test_other_kinds_are_refused(provider: Ruled) -> None:
    kind = CredentialKind("AWS_ROLE")
    with pytest.raises(KeyError):
        # The GCS provider declares no AWS kind: there is no spec to parse it with.
        provider.prepare(_ctx(kind), RawSecret(kind, {"role_arn": "arn:aws:iam::1:role/x"}))


def test_handles_do_not_reveal_key_material(provider: Ruled, rsa_key: RSAPrivateKey) -> None:
    sa = open_handle(provider, CredentialKind("GCS_SERVICE_ACCOUNT"), sa_info(rsa_key))
    hm = open_handle(
        provider, CredentialKind("GCS_HMAC"), {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
    )
    for handle in (sa, hm):
        text = repr(handle) + repr(vars(handle))
        assert "PRIVATE KEY" not in text
        assert HMAC_SECRET not in text
    # GCS keys have no expiry to warn about.
    assert provider.warnings(make_credential(CredentialKind("GCS_HMAC"))) == ()
    sa.close()
    hm.close()


def test_a_closed_handle_refuses_to_sign(provider: Ruled) -> None:
    hm = open_handle(
        provider, CredentialKind("GCS_HMAC"), {"access_id": HMAC_ACCESS_ID, "secret": HMAC_SECRET}
    )
    mount = make_mount("b")
    assert hm.sign(mount, ["k"], UrlRequest(Method.GET, 60))[0].url
    hm.close()
    with pytest.raises(FailedPrecondition) as info:
        hm.sign(mount, ["k"], UrlRequest(Method.GET, 60))
    assert info.value.reason == "CREDENTIAL_CLOSED"
