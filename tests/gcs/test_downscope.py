"""Downscoped GCS_IMPERSONATION listing tokens: the Credential Access Boundary builder
(CEL escaping), and the STS token exchange against the IAM stand-in's STS wire protocol,
with fake-gcs-server (or a bearer-recording GCS) for the listing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from gcs.gcsutil import (
    CUSTOMER_SA,
    TokenEndpoint,
    accepts_issued,
    identity_env,
    make_mount,
    open_handle,
)

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unavailable
from bucketvault.models import CredentialKind, ListRequest
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs import build
from bucketvault.providers.gcs.downscope import (
    StsClient,
    access_boundary,
    cel_string,
    prefix_condition,
)
from bucketvault.providers.gcs.identity import DEFAULT_STS_ENDPOINT, GcpIdentityConfig
from bucketvault.providers.gcs.provider import GcsProvider
from bucketvault.providers.gcs.tokens import AccessToken
from bucketvault.testing.iamcredentials import IamCredentialsStandIn
from bucketvault.testing.providers import Ruled
from bucketvault.urlpolicy import UrlPolicy

pytestmark = pytest.mark.gcs

NOW = datetime(2026, 7, 4, 9, 30, 15, tzinfo=UTC)
KIND = CredentialKind("GCS_IMPERSONATION")
SECRET = {"service_account": CUSTOMER_SA}
INSECURE = UrlPolicy(allow_insecure=True)
ALL = ListRequest(prefix="", delimiter="", page_size=1000, page_token="")


def cel_literals(expression: str) -> list[str]:
    """Every single-quoted string literal of a CEL expression, decoded (an independent
    reader of CEL's escapes: \\\\ \\' \\" \\uXXXX); fails on an unterminated literal."""
    out: list[str] = []
    i = 0
    while i < len(expression):
        if expression[i] != "'":
            i += 1
            continue
        i += 1
        text = []
        while expression[i] != "'":
            char = expression[i]
            assert char not in "\n\r", "raw newline inside a CEL literal"
            if char == "\\":
                nxt = expression[i + 1]
                if nxt == "u":
                    text.append(chr(int(expression[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                assert nxt in "\\'\"", f"unknown escape \\{nxt}"
                text.append(nxt)
                i += 2
                continue
            text.append(char)
            i += 1
        out.append("".join(text))
        i += 1
    return out


@pytest.mark.parametrize(
    "text",
    [
        "reports/",
        "it's/",
        'say "hi"/',
        "back\\slash\\",
        "\\'",
        "tab\there\nnew\x7f",
        "ünï/日本/",
        "",
    ],
)
def test_cel_string_round_trips(text: str) -> None:
    literal = cel_string(text)
    assert cel_literals(literal) == [text]
    assert "\n" not in literal and "\t" not in literal


def test_cel_string_escapes_exactly() -> None:
    assert cel_string("a'b\\c\"d\n") == "'a\\'b\\\\c\\\"d\\u000a'"


@pytest.mark.parametrize("prefix", ["reports/", "o'brien/\\x') || true || ('", 'a"b/'])
def test_prefix_condition_names_bucket_and_prefix_and_nothing_else(prefix: str) -> None:
    expression = prefix_condition("bkt", prefix)
    # An injected prefix stays one literal: the expression's structure is fixed.
    assert cel_literals(expression) == [
        f"projects/_/buckets/bkt/objects/{prefix}",
        "storage.googleapis.com/objectListPrefix",
        "",
        prefix,
    ]
    assert expression.startswith("resource.name.startsWith(")
    assert expression.count(" || ") == 1 + 2 * prefix.count(" || ")


def test_access_boundary_shape() -> None:
    assert access_boundary("bkt", "") == {
        "accessBoundary": {
            "accessBoundaryRules": [
                {
                    "availableResource": "//storage.googleapis.com/projects/_/buckets/bkt",
                    "availablePermissions": ["inRole:roles/storage.objectViewer"],
                }
            ]
        }
    }
    rule = access_boundary("bkt", "r/")["accessBoundary"]["accessBoundaryRules"][0]
    assert rule["availabilityCondition"] == {
        "expression": "resource.name.startsWith('projects/_/buckets/bkt/objects/r/') || "
        "api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('r/')"
    }


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
def stand_in(iam: IamCredentialsStandIn) -> Iterator[IamCredentialsStandIn]:
    iam.reset()
    yield iam
    iam.reset()


@pytest.fixture(scope="module")
def provider(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: RSAPrivateKey,
    token_server: TokenEndpoint,
    iam: IamCredentialsStandIn,
    clock: FrozenClock,
) -> Ruled:
    env = identity_env(tmp_path_factory.mktemp("id"), rsa_key, token_server.url, iam.url)
    built = build(env, clock, INSECURE)
    assert isinstance(built, GcsProvider)
    return Ruled(built, clock)


def test_the_listing_carries_the_downscoped_token_not_the_broad_one(
    provider: Ruled, stand_in: IamCredentialsStandIn, token_server: TokenEndpoint
) -> None:
    # The token endpoint's GET path stands in for a GCS that records bearers and says 403.
    handle = open_handle(provider, KIND, SECRET)
    with pytest.raises(PermissionDenied):
        list(handle.list(make_mount("any", endpoint=token_server.base, prefix="p/"), ALL))
    bearer = token_server.state.bearer_seen[-1].removeprefix("Bearer ")
    assert bearer not in stand_in.minted
    account, boundary = stand_in.downscoped[bearer]
    assert account == CUSTOMER_SA
    assert boundary == access_boundary("any", "p/")
    # The exchange's subject was the impersonated account's broad token.
    (exchange,) = stand_in.exchanges
    assert stand_in.minted[exchange.form["subject_token"]] == CUSTOMER_SA


def test_the_exchange_speaks_the_sts_wire_protocol_and_names_the_mount(
    provider: Ruled, stand_in: IamCredentialsStandIn, fake_gcs: str, bucket: str
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    request = ListRequest(prefix="big/", delimiter="/", page_size=1000, page_token="")
    keys = [
        e.key for p in handle.list(make_mount(bucket, fake_gcs, "big/"), request) for e in p.entries
    ]
    assert len(keys) == 2500
    (exchange,) = stand_in.exchanges
    assert exchange.status == 200
    assert exchange.form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert exchange.form["requested_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    (rule,) = exchange.rules
    assert rule["availableResource"] == f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    assert rule["availablePermissions"] == ["inRole:roles/storage.objectViewer"]
    literals = cel_literals(rule["availabilityCondition"]["expression"])
    assert literals[0] == f"projects/_/buckets/{bucket}/objects/big/" and literals[-1] == "big/"


def test_the_same_exchange_as_google_auth_downscoped(stand_in: IamCredentialsStandIn) -> None:
    # google.auth.downscoped against the stand-in, then ours: the same form on the wire
    # (options=quote(json.dumps(boundary)), form-encoded again), the same boundary.
    import google.auth.transport.requests
    from google.auth import downscoped
    from google.oauth2 import credentials, sts

    broad = "ya29.broad"
    with stand_in._lock:  # a token the stand-in minted, for the exchange to accept
        stand_in.minted[broad] = CUSTOMER_SA
        stand_in._minted_until[broad] = NOW.replace(year=2027)
    rule = downscoped.AccessBoundaryRule(
        "//storage.googleapis.com/projects/_/buckets/b",
        ["inRole:roles/storage.objectViewer"],
        downscoped.AvailabilityCondition(prefix_condition("b", "it's/")),
    )
    creds = downscoped.Credentials(
        credentials.Credentials(broad, expiry=datetime(2027, 1, 1)),
        downscoped.CredentialAccessBoundary([rule]),
    )
    creds._sts_client = sts.Client(stand_in.sts_url)
    # The source credential cannot refresh: refresh() of a plain token is skipped.
    creds._source_credentials.refresh = lambda request: None  # type: ignore[method-assign]
    creds.refresh(google.auth.transport.requests.Request())
    (theirs,) = stand_in.exchanges
    assert theirs.status == 200
    assert theirs.boundary == access_boundary("b", "it's/")
    assert creds.token == theirs.issued
    ours = StsClient(stand_in.sts_url, Egress(UrlPolicy(allow_insecure=True)))
    subject = AccessToken(broad, NOW.replace(year=2027))
    got = ours.exchange(
        subject, access_boundary("b", "it's/"), account=CUSTOMER_SA, bucket="b", now=NOW
    )
    ours.close()
    mine = stand_in.exchanges[1]
    # The same fields; options differ only in JSON key order.
    assert {**mine.form, "options": ""} == {**theirs.form, "options": ""}
    assert mine.boundary == theirs.boundary
    assert got.token == mine.issued and got.expires_at <= subject.expires_at


def test_two_prefixes_two_tokens_and_one_mount_reuses_its_token(
    provider: Ruled, stand_in: IamCredentialsStandIn, fake_gcs: str, bucket: str
) -> None:
    handle = open_handle(provider, KIND, SECRET)
    reports, logs = make_mount(bucket, fake_gcs, "big/"), make_mount(bucket, fake_gcs, "odd/")
    for mount in (reports, logs, reports, logs, reports):
        list(handle.list(mount, ListRequest(mount.prefix, "/", 10, "")))
    assert len(stand_in.exchanges) == 2
    first, second = stand_in.exchanges
    assert first.issued != second.issued
    assert stand_in.downscoped[first.issued][1] == access_boundary(bucket, "big/")
    assert stand_in.downscoped[second.issued][1] == access_boundary(bucket, "odd/")
    # One broad token behind both.
    assert first.form["subject_token"] == second.form["subject_token"]
    assert stand_in.count("generateAccessToken") == 1


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (403, FailedPrecondition, "GCP_STS_REFUSED"),
        (400, FailedPrecondition, "GCP_STS_REFUSED"),
        (503, Unavailable, "GCP_STS_UNAVAILABLE"),
        (500, Unavailable, "GCP_STS_UNAVAILABLE"),
        (429, Unavailable, "GCP_STS_UNAVAILABLE"),
    ],
)
def test_sts_errors_map_to_clear_reasons(
    provider: Ruled,
    stand_in: IamCredentialsStandIn,
    fake_gcs: str,
    bucket: str,
    status: int,
    error: type[Exception],
    reason: str,
) -> None:
    stand_in.fail_sts(status)
    handle = open_handle(provider, KIND, SECRET)
    with pytest.raises(error) as exc:
        list(handle.list(make_mount(bucket, fake_gcs, "big/"), ALL))
    assert getattr(exc.value, "reason", "") == reason
    assert CUSTOMER_SA in str(exc.value)


def test_an_unreachable_sts_is_unavailable(
    tmp_path: Path,
    rsa_key: RSAPrivateKey,
    token_server: TokenEndpoint,
    iam: IamCredentialsStandIn,
    clock: FrozenClock,
    fake_gcs: str,
    bucket: str,
) -> None:
    env = {
        **identity_env(tmp_path, rsa_key, token_server.url, iam.url),
        "BUCKETVAULT_GCP_STS_ENDPOINT": "http://127.0.0.1:9/v1/token",
    }
    gcs = build(env, clock, INSECURE)
    assert gcs is not None
    handle = open_handle(Ruled(gcs, clock), KIND, SECRET)
    with pytest.raises(Unavailable) as exc:
        list(handle.list(make_mount(bucket, fake_gcs, "big/"), ALL))
    assert exc.value.reason == "GCP_STS_UNAVAILABLE"


def test_the_sts_endpoint_default_and_override_policy() -> None:
    strict = UrlPolicy(resolver=lambda host: ["93.184.216.34"])
    assert GcpIdentityConfig.from_env({}, strict).sts_endpoint == DEFAULT_STS_ENDPOINT
    assert DEFAULT_STS_ENDPOINT == "https://sts.googleapis.com/v1/token"
    custom = {"BUCKETVAULT_GCP_STS_ENDPOINT": "https://sts.example.com/v1/token"}
    assert (
        GcpIdentityConfig.from_env(custom, strict).sts_endpoint
        == custom["BUCKETVAULT_GCP_STS_ENDPOINT"]
    )
    with pytest.raises(InvalidArgument) as exc:
        GcpIdentityConfig.from_env(
            {"BUCKETVAULT_GCP_STS_ENDPOINT": "http://sts.example.com"}, strict
        )
    assert exc.value.reason == "INSECURE_ENDPOINT"
    assert exc.value.field == "BUCKETVAULT_GCP_STS_ENDPOINT"
