"""CheckMount's CORS probe against LocalStack: a bucket CORS configuration put with boto3
lets the preflight from its origin through and refuses any other, with the S3 rule to add."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws.aws_support import Peer, credential, mount, secret

from bucketvault.clock import SystemClock
from bucketvault.errors import BucketVaultError
from bucketvault.models import CredentialKind
from bucketvault.providers.aws import build
from bucketvault.providers.cors import PROBE_NAME, preflight
from bucketvault.testing.providers import Ruled
from bucketvault.testing.server import start_server
from bucketvault.urlpolicy import UrlPolicy
from bucketvault.v1 import vault_pb2

pytestmark = pytest.mark.localstack

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


def s3_admin(localstack: Peer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=localstack.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def key_handle(localstack: Peer) -> Any:
    provider = Ruled(build({}, SystemClock(), UrlPolicy(allow_insecure=True)), SystemClock())
    kind = CredentialKind("S3_ACCESS_KEY")
    return provider.open(
        credential(kind),
        secret(
            kind,
            access_key_id="AKIDLOCALSTACK",
            secret_access_key="test",
            endpoint_url=localstack.url,
            region="us-east-1",
        ),
    )


@pytest.fixture(scope="module")
def buckets(localstack: Peer) -> tuple[str, str]:
    s3 = s3_admin(localstack)
    with_cors, without = "cors-probe-on", "cors-probe-off"
    for name in (with_cors, without):
        s3.create_bucket(Bucket=name)
    rule = {"AllowedOrigins": [ALLOWED], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}
    s3.put_bucket_cors(Bucket=with_cors, CORSConfiguration={"CORSRules": [rule]})
    return with_cors, without


def test_the_configured_origin_passes_and_another_gets_the_s3_rule(
    localstack: Peer, buckets: tuple[str, str]
) -> None:
    handle = key_handle(localstack)
    m = mount(buckets[0], prefix="img/")
    target = handle.cors_target(m)
    assert target.url == f"{localstack.url}/{buckets[0]}/img/{PROBE_NAME}"
    ok = preflight(target, ALLOWED)
    assert (ok.origin, ok.allowed, ok.suggested_rule) == (ALLOWED, True, "")
    assert f"Access-Control-Allow-Origin: {ALLOWED}" in ok.detail
    refused = preflight(target, OTHER)
    assert not refused.allowed
    assert "put-bucket-cors" in refused.detail
    (rule,) = json.loads(refused.suggested_rule)["CORSRules"]
    assert rule["AllowedOrigins"] == [OTHER]
    assert rule["AllowedMethods"] == ["GET", "HEAD"]
    # The suggested rule, applied as is, is what the preflight wanted.
    s3_admin(localstack).put_bucket_cors(
        Bucket=buckets[1], CORSConfiguration=json.loads(refused.suggested_rule)
    )
    fixed = preflight(handle.cors_target(mount(buckets[1], prefix="img/")), OTHER)
    assert fixed.allowed, fixed.detail


def test_a_bucket_without_cors_refuses_every_origin(
    localstack: Peer, buckets: tuple[str, str]
) -> None:
    s3_admin(localstack).create_bucket(Bucket="cors-probe-none")
    verdict = preflight(key_handle(localstack).cors_target(mount("cors-probe-none")), ALLOWED)
    assert not verdict.allowed
    assert "preflight 403" in verdict.detail


def test_check_mount_probes_the_asked_and_the_configured_origins(
    localstack: Peer, buckets: tuple[str, str], tmp_path: Path
) -> None:
    env = {
        "AWS_ENDPOINT_URL": localstack.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "BUCKETVAULT_BROWSER_ORIGINS": f"{ALLOWED}, {OTHER}",
    }
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        doc = {"access_key_id": "AKIDLS", "secret_access_key": "test"}
        cred = c.register_credential(
            "acme", "S3_ACCESS_KEY", doc | {"endpoint_url": localstack.url}, display_name="ls"
        )
        m = c.create_mount(
            "acme", name="cors", bucket=buckets[0], credential_id=cred.credential_id, prefix="img/"
        )

        def check(origin: str) -> vault_pb2.CheckMountResponse:
            return c.check_mount("acme", m.mount_id, origin=origin)

        plain = check("")
        assert plain.state == vault_pb2.CheckMountResponse.STATE_AVAILABLE
        assert [(v.origin, v.allowed) for v in plain.cors] == [(ALLOWED, True), (OTHER, False)]
        assert json.loads(plain.cors[1].suggested_rule)["CORSRules"][0]["AllowedOrigins"] == [OTHER]
        # The asked origin comes first; one already configured is probed once.
        asked = check("http://localhost:3000")
        assert [v.origin for v in asked.cors] == ["http://localhost:3000", ALLOWED, OTHER]
        assert [v.origin for v in check(OTHER).cors] == [OTHER, ALLOWED]
        with pytest.raises(BucketVaultError) as info:
            check("https://app.example.com/path")
        assert (info.value.reason, info.value.field) == ("INVALID_FIELD", "origin")
        # Not AVAILABLE: nothing to probe.
        gone = c.create_mount(
            "acme", name="gone", bucket="no-such-bucket-cors", credential_id=cred.credential_id
        )
        result = c.check_mount("acme", gone.mount_id)
        assert (result.state, list(result.cors)) == (
            vault_pb2.CheckMountResponse.STATE_NOT_FOUND,
            [],
        )
