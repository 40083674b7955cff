"""STS answers (real botocore parsing, a scripted local STS) -> registration outcomes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aws.aws_support import ROLE_ARN, ScriptedSts, free_port, secret, sts_error, sts_session

from bucketvault.clock import SystemClock
from bucketvault.errors import FailedPrecondition, Unavailable
from bucketvault.models import CredentialKind, RegistrationContext
from bucketvault.providers.aws.provider import AwsProvider
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.aws.sts import Backoff
from bucketvault.testing.providers import Ruled
from bucketvault.urlpolicy import UrlPolicy

CONTEXT = RegistrationContext("acme", "cred-1", CredentialKind("AWS_ROLE"))
ROLE = secret(CredentialKind("AWS_ROLE"), role_arn=ROLE_ARN)
Answer = Callable[[dict[str, str]], tuple[int, bytes]]


def provider_for(url: str, slept: list[float] | None = None) -> Ruled:
    settings = AwsSettings(
        sts_endpoint=url, access_key_id="AKIDSERVICE", secret_access_key="service-secret"
    )
    backoff = Backoff(sleep=(slept if slept is not None else []).append)
    # The STS stand-in listens on loopback: the egress guard lets it through only so.
    policy = UrlPolicy(allow_insecure=True)
    return Ruled(AwsProvider(settings, SystemClock(), policy, backoff=backoff), SystemClock())


@pytest.fixture
def scripted() -> Iterator[Callable[[Answer], ScriptedSts]]:
    servers: list[ScriptedSts] = []

    def make(answer: Answer) -> ScriptedSts:
        servers.append(ScriptedSts(answer))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_access_denied_is_failed_precondition_naming_trust_policy(
    scripted: Callable[[Answer], ScriptedSts],
) -> None:
    sts = scripted(lambda form: (403, sts_error("AccessDenied", "not authorized")))
    with pytest.raises(FailedPrecondition) as info:
        provider_for(sts.url).prepare(CONTEXT, ROLE)
    assert info.value.reason == "ASSUME_ROLE_DENIED"
    assert "trust policy" in info.value.message and "ExternalId" in info.value.message
    assert len(sts.forms) == 1, "a denial is not retried"


@pytest.mark.parametrize(
    ("message", "limit", "fix"),
    [
        (
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            "ROLE_MAX_SESSION_DURATION",
            "MaxSessionDuration",
        ),
        (
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
            "by role chaining.",
            "ROLE_CHAINING",
            "role chaining",
        ),
    ],
)
def test_short_session_roles_are_accepted_with_one_hour_and_a_warning(
    scripted: Callable[[Answer], ScriptedSts], message: str, limit: str, fix: str
) -> None:
    def answer(form: dict[str, str]) -> tuple[int, bytes]:
        if int(form["DurationSeconds"]) > 3600:
            return 400, sts_error("ValidationError", message)
        return 200, sts_session(3600)

    sts = scripted(answer)
    prep = provider_for(sts.url).prepare(CONTEXT, ROLE)
    assert [f["DurationSeconds"] for f in sts.forms] == ["21600", "3600"]
    assert prep.metadata["session_duration_seconds"] == "3600"
    assert prep.metadata["session_limit"] == limit
    [warning] = prep.warnings
    assert fix in warning and ROLE_ARN in warning


def test_throttling_is_retried_then_succeeds(scripted: Callable[[Answer], ScriptedSts]) -> None:
    answers = iter([(400, sts_error("Throttling", "Rate exceeded"))] * 2)

    def answer(form: dict[str, str]) -> tuple[int, bytes]:
        return next(answers, (200, sts_session(21600)))

    sts = scripted(answer)
    slept: list[float] = []
    prep = provider_for(sts.url, slept).prepare(CONTEXT, ROLE)
    assert prep.metadata["session_duration_seconds"] == "21600"
    assert len(sts.forms) == 3
    assert len(slept) == 2 and 0 <= slept[0] <= 0.2 and 0 <= slept[1] <= 0.4


def test_sts_unreachable_is_unavailable() -> None:
    slept: list[float] = []
    with pytest.raises(Unavailable) as info:
        provider_for(f"http://127.0.0.1:{free_port()}", slept).prepare(CONTEXT, ROLE)
    assert info.value.reason == "STS_UNAVAILABLE"
    assert len(slept) == 3
    assert "service-secret" not in str(info.value)


def test_s3_access_key_registration_calls_nothing() -> None:
    provider = provider_for(f"http://127.0.0.1:{free_port()}")
    context = RegistrationContext("acme", "c", CredentialKind("S3_ACCESS_KEY"))
    doc = secret(CredentialKind("S3_ACCESS_KEY"), access_key_id="AKID", secret_access_key="s")
    assert provider.prepare(context, doc).metadata == {
        "access_key_id": "AKID",
        "endpoint_url": "",
        "region": "",
    }
