"""Sessions scoped to the mount, against a recording STS speaking the real wire protocol.

botocore sends every AssumeRole to ``RecordingSts`` (bucketvault.testing.sts), which
records the decoded call: the tests assert the inline session policy, SourceIdentity and
tags that reach STS, how sessions are shared, and what registration and CreateMount do
when STS refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aws.aws_support import ROLE_ARN, credential, free_port, mount, secret

from bucketvault import errors
from bucketvault.clock import SystemClock
from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind, Method, MountPolicy, RegistrationContext
from bucketvault.providers.aws.provider import AwsProvider
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.aws.sts import Backoff
from bucketvault.testing.providers import Ruled, RuledHandle, UrlRequest
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.testing.sts import RecordingSts
from bucketvault.urlpolicy import UrlPolicy

AWS_ROLE = CredentialKind("AWS_ROLE")
ROLE = secret(AWS_ROLE, role_arn=ROLE_ARN)
DENIED_TAGGING = (
    403,
    "AccessDenied",
    "User: arn:aws:iam::111122223333:user/bv is not authorized to perform: sts:TagSession "
    f"on resource: {ROLE_ARN}",
)


@pytest.fixture
def sts() -> Iterator[RecordingSts]:
    server = RecordingSts()
    yield server
    server.close()


def provider(sts: RecordingSts) -> Ruled:
    settings = AwsSettings(
        sts_endpoint=sts.url,
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id="AKIDSERVICE",
        secret_access_key="service-secret",
        service_principal_arn="arn:aws:iam::111122223333:role/bv",
    )
    backoff = Backoff(sleep=lambda s: None)
    # The STS stand-in listens on loopback: the egress guard lets it through only so.
    policy = UrlPolicy(allow_insecure=True)
    return Ruled(AwsProvider(settings, SystemClock(), policy, backoff=backoff), SystemClock())


def role_handle(sts: RecordingSts) -> RuledHandle:
    meta = {"external_id": "ext-acme", "session_duration_seconds": "21600"}
    return provider(sts).open(credential(AWS_ROLE, meta), ROLE)


def test_assume_role_carries_the_mount_policy_source_identity_and_tags(
    sts: RecordingSts,
) -> None:
    handle = role_handle(sts)
    m = replace(
        mount("photos", prefix="2026/", region="eu-west-1"),
        policy=MountPolicy(3600, frozenset({Method.GET, Method.HEAD})),
    )
    [url] = handle.sign(m, ["2026/a.jpg"], UrlRequest(Method.GET, 600, caller="alice@acme"))
    assert "ASIARECORDED00000001" in url.url
    [call] = sts.assume_calls()
    assert call.policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/2026/*"},
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::photos",
                "Condition": {"StringLike": {"s3:prefix": "2026/*"}},
            },
        ],
    }
    assert " " not in call["Policy"]
    assert call["SourceIdentity"] == "alice@acme"
    assert call.tags == {"bucketvault:tenant": "acme", "bucketvault:mount": "photos/2026/"}
    assert call["RoleSessionName"].startswith("bv.acme.photos.")
    assert call["ExternalId"] == "ext-acme" and call["DurationSeconds"] == "21600"
    assert "TransitiveTagKeys.member.1" not in call.form


def test_sessions_are_shared_per_scope_and_caller(sts: RecordingSts) -> None:
    handle = role_handle(sts)
    get = UrlRequest(Method.GET, 600, caller="alice")
    a = mount("photos", prefix="a/", region="eu-west-1", mount_id="m-a")
    a_twin = mount("photos", prefix="a/", region="eu-west-1", mount_id="m-a2")
    b = mount("photos", prefix="b/", region="eu-west-1", mount_id="m-b")
    handle.sign(a, ["a/1"], get)
    handle.sign(a_twin, ["a/2"], get)
    assert len(sts.assume_calls()) == 1, "same bucket, prefix and methods: one session"
    handle.sign(b, ["b/1"], get)
    calls = sts.assume_calls()
    assert len(calls) == 2, "another prefix: another session"
    assert calls[1].policy["Statement"][0]["Resource"] == "arn:aws:s3:::photos/b/*"
    handle.sign(a, ["a/1"], UrlRequest(Method.GET, 600, caller="bob"))
    assert [c["SourceIdentity"] for c in sts.assume_calls()] == ["alice", "alice", "bob"]
    urls = {handle.sign(a, ["a/1"], get)[0].url.split("X-Amz-Credential=")[1][:20]}
    assert urls == {"ASIARECORDED00000001"}, "alice keeps her own session"
    assert len(sts.assume_calls()) == 3


def test_registration_proves_the_role_with_tags_and_a_session_allowed_nothing(
    sts: RecordingSts,
) -> None:
    context = RegistrationContext("acme", "cred-1", AWS_ROLE, "admin")
    provider(sts).prepare(context, ROLE)
    [call] = sts.assume_calls()
    assert call.policy["Statement"] == [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
    assert call["SourceIdentity"] == "admin"
    assert call.tags == {"bucketvault:tenant": "acme"}


def test_registration_refused_tagging_names_the_statement_to_add(sts: RecordingSts) -> None:
    sts.refuse = lambda form: DENIED_TAGGING
    context = RegistrationContext("acme", "cred-1", AWS_ROLE, "admin")
    with pytest.raises(FailedPrecondition) as info:
        provider(sts).prepare(context, ROLE)
    assert info.value.reason == "ASSUME_ROLE_ATTRIBUTION_DENIED"
    assert "sts:TagSession" in info.value.message
    assert "sts:SetSourceIdentity" in info.value.message
    assert len(sts.assume_calls()) == 1, "a denial is not retried"


def test_packed_policy_too_large_fails_admission(sts: RecordingSts) -> None:
    sts.refuse = lambda form: (
        400,
        "PackedPolicyTooLarge",
        "Packed policy consumes 112% of allotted space, please use smaller policy.",
    )
    meta = {"role_arn": ROLE_ARN, "external_id": "ext-acme"}
    with pytest.raises(InvalidArgument) as info:
        provider(sts).provider.admit_mount(credential(AWS_ROLE, meta), mount("photos", prefix="p/"))
    assert info.value.reason == "SESSION_POLICY_TOO_LARGE"
    [call] = sts.assume_calls()
    assert call["DurationSeconds"] == "3600" and call.policy


# -- through the gRPC server -------------------------------------------------------------


@pytest.fixture
def served(sts: RecordingSts, tmp_path: Path) -> Iterator[RunningServer]:
    env = {
        "AWS_ENDPOINT_URL_STS": sts.url,
        # Nothing listens there: CheckMount reports the endpoint, and its scope.
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "AKIDSERVICE",
        "AWS_SECRET_ACCESS_KEY": "service-secret",
        "AWS_REGION": "us-east-1",
        "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::111122223333:role/bv",
    }
    with start_server(tmp_path, env=env) as srv:
        yield srv


def test_trust_policy_allows_tagging_and_source_identity(served: RunningServer) -> None:
    doc = json.loads(served.client().trust_policy("acme").policy_json)
    [statement] = doc["Statement"]
    assert statement["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert "sts:ExternalId" in statement["Condition"]["StringEquals"]


def test_create_mount_with_a_too_large_policy_fails_and_stores_nothing(
    served: RunningServer, sts: RecordingSts
) -> None:
    c = served.client()
    cred = c.register_credential("acme", "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="r")
    sts.clear()
    with pytest.raises(errors.InvalidArgument) as info:
        c.create_mount(
            "acme", name="big", bucket="photos", credential_id=cred.credential_id, prefix="*" * 400
        )
    assert info.value.reason == "SESSION_POLICY_TOO_LARGE"
    assert list(c.list_mounts("acme")) == []
    assert sts.assume_calls() == [], "refused locally, before STS"
    m = c.create_mount(
        "acme", name="ok", bucket="photos", region="us-east-1", credential_id=cred.credential_id
    )
    [probe] = sts.assume_calls()
    assert probe.tags["bucketvault:mount"] == "photos/"
    sts.clear()
    signed = c.sign_url("acme", m.mount_id, "a.jpg", ttl_seconds=600)
    assert "ASIARECORDED" in signed.url
    [call] = sts.assume_calls()
    assert call["SourceIdentity"] == "admin", "the caller's principal name"


def test_check_mount_says_what_the_cloud_enforces(served: RunningServer) -> None:
    c = served.client()
    role = c.register_credential("acme", "AWS_ROLE", {"role_arn": ROLE_ARN}, display_name="r")
    m = c.create_mount(
        "acme",
        name="r",
        bucket="photos",
        prefix="p/",
        region="us-east-1",
        credential_id=role.credential_id,
    )
    result = c.check_mount("acme", m.mount_id)
    assert result.enforced_scope == (
        "session policy: s3:GetObject on arn:aws:s3:::photos/p/*; s3:ListBucket prefix p/*"
    )
    key = c.register_credential(
        "acme",
        "S3_ACCESS_KEY",
        {"access_key_id": "AKIDKEY", "secret_access_key": "s", "region": "us-east-1"},
        display_name="k",
    )
    k = c.create_mount("acme", name="k", bucket="photos", credential_id=key.credential_id)
    scope = c.check_mount("acme", k.mount_id).enforced_scope
    assert scope.startswith("none: an access key")
