"""GCS_IMPERSONATION against real peers: the IAM Credentials stand-in (signBlob,
generateAccessToken, bearer checks), the local token endpoint for the service's own key
file, fake-gcs-server for listing and fetching, and the independent V4 verifier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CLIENT_EMAIL,
    CUSTOMER_SA,
    ODD_KEYS,
    TokenEndpoint,
    accepts_issued,
    identity_env,
    make_mount,
    open_handle,
    pem,
    sa_info,
)
from gcs.v4verify import verify

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unavailable
from bucketvault.models import CredentialKind, ListRequest, Method, RegistrationContext
from bucketvault.providers.gcs import build
from bucketvault.providers.gcs.provider import GcsProvider
from bucketvault.providers.gcs.v4 import MAX_EXPIRES
from bucketvault.testing.iamcredentials import IamCredentialsStandIn
from bucketvault.testing.providers import RawSecret, Ruled, UrlRequest
from bucketvault.urlpolicy import UrlPolicy

pytestmark = pytest.mark.gcs

NOW = datetime(2026, 7, 4, 9, 30, 15, tzinfo=UTC)
KIND = CredentialKind("GCS_IMPERSONATION")
SECRET = {"service_account": CUSTOMER_SA}
INSECURE = UrlPolicy(allow_insecure=True)


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def iam(token_server: TokenEndpoint, clock: FrozenClock) -> Iterator[IamCredentialsStandIn]:
    server = IamCredentialsStandIn(accepts_issued(token_server), clock)
    server.add_account(CUSTOMER_SA)
    yield server
    server.close()


@pytest.fixture
def iam_calls(iam: IamCredentialsStandIn) -> IamCredentialsStandIn:
    iam.reset()
    return iam


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: RSAPrivateKey,
    token_server: TokenEndpoint,
    iam: IamCredentialsStandIn,
) -> dict[str, str]:
    return identity_env(tmp_path_factory.mktemp("id"), rsa_key, token_server.url, iam.url)


@pytest.fixture(scope="module")
def provider(env: dict[str, str], clock: FrozenClock) -> Ruled:
    built = build(env, clock, INSECURE)
    assert isinstance(built, GcsProvider)
    return Ruled(built, clock)


def test_urls_verify_with_the_impersonated_accounts_key_and_fetch(
    provider: Ruled, iam_calls: IamCredentialsStandIn, fake_gcs: str, bucket: str
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    mount = make_mount(bucket, endpoint=fake_gcs)
    urls = handle.sign(mount, ODD_KEYS, UrlRequest(Method.GET, 600))
    public = iam_calls.public_key(CUSTOMER_SA)
    for signed in urls:
        got = verify(signed.url, method="GET", now=NOW, signer=CUSTOMER_SA, public_key=public)
        assert got.object_name == signed.key
        assert requests.get(signed.url, timeout=10).content == b"bytes of " + signed.key.encode()
    # One signBlob per URL, each as the service's own identity (a token its endpoint issued).
    calls = [c for c in iam_calls.calls if c.method == "signBlob"]
    assert len(calls) == len(ODD_KEYS)
    assert {c.account for c in calls} == {CUSTOMER_SA}
    assert all(c.bearer.startswith("ya29.test-") for c in calls)


def test_same_bytes_as_the_key_file_signer_for_the_same_key(
    provider: Ruled, iam_calls: IamCredentialsStandIn, tmp_path: Path
) -> None:
    # Only the last stage differs: with the account's own key the RSA signer must agree.
    key = iam_calls.private_key(CUSTOMER_SA)
    keyed = open_handle(
        provider,
        CredentialKind("GCS_SERVICE_ACCOUNT"),
        {**sa_info(key), "client_email": CUSTOMER_SA, "private_key": pem(key)},
    )
    keyless = open_handle(provider, KIND, SECRET)
    mount = make_mount("bucket")
    request = UrlRequest(Method.GET, 3600, response_content_type="image/png")
    keys = ["a/ü b+c.jpg", "z"]
    assert [u.url for u in keyless.sign(mount, keys, request)] == [
        u.url for u in keyed.sign(mount, keys, request)
    ]


def test_a_batch_signs_concurrently_and_is_capped_at_the_signblob_key_guarantee(
    provider: Ruled, iam_calls: IamCredentialsStandIn
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    keys = [f"p/{i:03d}.bin" for i in range(200)]
    urls = handle.sign(
        make_mount("bucket", max_ttl=MAX_EXPIRES), keys, UrlRequest(Method.GET, MAX_EXPIRES)
    )
    assert [u.key for u in urls] == keys
    assert iam_calls.count("signBlob") == 200
    public = iam_calls.public_key(CUSTOMER_SA)
    for u in urls[::20]:
        verify(u.url, method="GET", now=NOW, signer=CUSTOMER_SA, public_key=public)
    # Google keeps a signBlob key valid for at least 12 h: not the 7 days V4 allows.
    assert urls[0].expiry_capped_by == "SESSION_EXPIRY"
    assert urls[0].expires_at <= NOW + timedelta(hours=12)


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (403, FailedPrecondition, "IMPERSONATION_NOT_GRANTED"),
        (429, Unavailable, "IAM_CREDENTIALS_UNAVAILABLE"),
        (503, Unavailable, "IAM_CREDENTIALS_UNAVAILABLE"),
    ],
)
def test_signblob_refusals_map_to_clear_reasons(
    provider: Ruled,
    iam_calls: IamCredentialsStandIn,
    status: int,
    error: type[Exception],
    reason: str,
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    # The stand-in counts across the module's tests: measure this batch's calls only.
    before = iam_calls.count("signBlob")
    iam_calls.fail(status)
    try:
        with pytest.raises(error) as exc:
            handle.sign(
                make_mount("bucket"), [f"k{i}" for i in range(400)], UrlRequest(Method.GET, 60)
            )
    finally:
        iam_calls.fail(None)
    assert exc.value.reason == reason  # type: ignore[attr-defined]
    if status == 403:
        message = exc.value.message  # type: ignore[attr-defined]
        assert "roles/iam.serviceAccountTokenCreator" in message
        assert CLIENT_EMAIL in message and CUSTOMER_SA in message
    # The first failure cancels the calls not yet started (a pool of 16: far fewer than 400
    # are ever sent, however the threads are scheduled).
    assert iam_calls.count("signBlob") - before < 400


def test_registration_checks_the_grant(provider: Ruled, iam_calls: IamCredentialsStandIn) -> None:
    context = RegistrationContext("acme", "cred_1", KIND)
    prep = provider.prepare(context, RawSecret(KIND, SECRET))
    assert dict(prep.metadata) == {"service_account": CUSTOMER_SA, "impersonated_by": CLIENT_EMAIL}
    stranger = {"service_account": "nobody@other-prj.iam.gserviceaccount.com"}
    with pytest.raises(FailedPrecondition) as exc:
        provider.prepare(context, RawSecret(KIND, stranger))
    assert exc.value.reason == "IMPERSONATION_NOT_GRANTED"


@pytest.mark.parametrize(
    "account",
    [
        "sa@project.example.com",
        "SA@p.iam.gserviceaccount.com",
        "a/b@p.iam.gserviceaccount.com",
        "x",
    ],
)
def test_only_service_account_addresses_are_accepted(provider: Ruled, account: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        provider.parse(RawSecret(KIND, {"service_account": account}))
    assert exc.value.field == "secret.service_account"


def test_listing_uses_one_cached_impersonated_token(
    provider: Ruled, iam_calls: IamCredentialsStandIn, fake_gcs: str, bucket: str
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    mount = make_mount(bucket, endpoint=fake_gcs)
    request = ListRequest(prefix="big/", delimiter="/", page_size=1000, page_token="")
    first = [e.key for p in handle.list(mount, request) for e in p.entries]
    again = [e.key for p in handle.list(mount, request) for e in p.entries]
    assert len(first) == 2500 and first == again
    minted = [c for c in iam_calls.calls if c.method == "generateAccessToken"]
    assert len(minted) == 1
    assert minted[0].account == CUSTOMER_SA
    assert minted[0].body["scope"] == ["https://www.googleapis.com/auth/devstorage.read_only"]


def test_listing_presents_the_minted_token_downscoped(
    provider: Ruled, iam_calls: IamCredentialsStandIn, token_server: TokenEndpoint
) -> None:
    # The token endpoint's GET path stands in for a GCS that records bearers and says 403.
    handle = open_handle(provider, KIND, SECRET)
    mount = make_mount("any", endpoint=token_server.base)
    with pytest.raises(PermissionDenied):
        list(handle.list(mount, ListRequest("", "", 10, "")))
    bearer = token_server.state.bearer_seen[-1].removeprefix("Bearer ")
    # Not the minted (broad) token itself: the one STS downscoped it to (test_downscope.py).
    assert bearer not in iam_calls.minted
    assert iam_calls.downscoped[bearer][0] == CUSTOMER_SA


def test_onboarding_names_the_services_identity(provider: Ruled) -> None:
    gcs = provider.provider
    assert isinstance(gcs, GcsProvider)
    onboarding = gcs.onboarding(KIND, "acme")
    assert onboarding is not None
    assert onboarding.identity == CLIENT_EMAIL
    assert f"--member=serviceAccount:{CLIENT_EMAIL}" in onboarding.links["gcloud"]
    assert "--role=roles/iam.serviceAccountTokenCreator" in onboarding.links["gcloud"]
    assert gcs.onboarding(CredentialKind("GCS_HMAC"), "acme") is None


def test_without_an_identity_the_keyless_kind_is_refused_clearly(
    clock: FrozenClock, tmp_path: Path
) -> None:
    missing = {"BUCKETVAULT_GCP_CREDENTIALS_FILE": str(tmp_path / "absent.json")}
    gcs = build(missing, clock, INSECURE)
    assert isinstance(gcs, GcsProvider)
    with pytest.raises(FailedPrecondition) as exc:
        gcs.onboarding(KIND, "acme")
    assert exc.value.reason == "GCP_IDENTITY_UNAVAILABLE"


def test_identity_endpoints_pass_the_url_policy(
    clock: FrozenClock, env: dict[str, str], tmp_path: Path
) -> None:
    strict = UrlPolicy()
    with pytest.raises(InvalidArgument) as exc:
        build(env, clock, strict)
    assert exc.value.reason == "INSECURE_ENDPOINT"
    # The key file's http token_uri is refused too, when the service first needs it.
    https_iam = {
        **env,
        "BUCKETVAULT_GCP_IAM_CREDENTIALS_ENDPOINT": "https://iam.example.com",
        "BUCKETVAULT_GCP_STS_ENDPOINT": "https://sts.example.com/v1/token",
    }
    gcs = build(https_iam, clock, UrlPolicy(resolver=lambda host: ["93.184.216.34"]))
    assert isinstance(gcs, GcsProvider)
    with pytest.raises(FailedPrecondition) as refused:
        gcs.onboarding(KIND, "acme")
    assert refused.value.reason == "GCP_IDENTITY_UNAVAILABLE"
    assert "token_uri" in refused.value.message


def test_check_reports_the_impersonated_accounts_grants_as_the_scope(
    provider: Ruled, iam_calls: IamCredentialsStandIn, fake_gcs: str, bucket: str
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    result = handle.check(make_mount(bucket, endpoint=fake_gcs))
    assert result.scope == (
        "listing: a token downscoped to the mount's bucket and prefix (Credential Access "
        f"Boundary); signing: {CUSTOMER_SA}'s own IAM grants, which the URLs it signs can use"
    )
