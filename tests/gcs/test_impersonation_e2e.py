"""GCS_IMPERSONATION through the real gRPC server: onboarding, registration, SignURL(s),
ListPrefix, refusals, audit, and the CLI's onboarding command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

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
)
from gcs.v4verify import verify

from bucketvault.cli.main import main
from bucketvault.client import BucketVaultClient
from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, Unavailable
from bucketvault.testing.iamcredentials import IamCredentialsStandIn
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import common_pb2

pytestmark = pytest.mark.gcs

NOW = datetime(2026, 7, 4, 9, 30, 15, tzinfo=UTC)
TENANT = "acme"
KIND = "GCS_IMPERSONATION"


@dataclass
class World:
    srv: RunningServer
    client: BucketVaultClient
    iam: IamCredentialsStandIn
    mount: str
    credential: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key: RSAPrivateKey,
    token_server: TokenEndpoint,
    fake_gcs: str,
    bucket: str,
) -> Iterator[World]:
    clock = FrozenClock(NOW)
    iam = IamCredentialsStandIn(accepts_issued(token_server), clock)
    iam.add_account(CUSTOMER_SA)
    env = identity_env(tmp_path_factory.mktemp("id"), rsa_key, token_server.url, iam.url)
    try:
        with start_server(tmp_path_factory.mktemp("srv"), env=env, clock=clock) as srv:
            c = srv.client()
            cred = c.register_credential(TENANT, KIND, {"service_account": CUSTOMER_SA})
            mount = c.create_mount(
                TENANT,
                name="keyless",
                bucket=bucket,
                prefix="odd/",
                credential_id=cred.credential_id,
                endpoint=fake_gcs,
                max_ttl_seconds=3600,
            )
            yield World(srv, c, iam, mount.mount_id, cred.credential_id)
    finally:
        iam.close()


def test_onboarding_names_our_identity_and_the_grant(world: World) -> None:
    o = world.client.onboarding(TENANT, KIND)
    assert o.kind == common_pb2.CREDENTIAL_KIND_GCS_IMPERSONATION
    assert o.identity == CLIENT_EMAIL
    assert any("roles/iam.serviceAccountTokenCreator" in s for s in o.steps)
    assert o.links["gcloud"].startswith("gcloud iam service-accounts add-iam-policy-binding")
    with pytest.raises(FailedPrecondition) as exc:
        world.client.onboarding(TENANT, "GCS_HMAC")
    assert exc.value.reason == "NO_ONBOARDING"
    actions = [r.action for r in world.srv.client().query_audit(TENANT)]
    assert actions.count("vault.onboarding") == 2  # the refusal is recorded too


def test_the_credential_shows_who_impersonates_whom(world: World) -> None:
    cred = world.client.get_credential(TENANT, world.credential)
    assert dict(cred.metadata) == {"service_account": CUSTOMER_SA, "impersonated_by": CLIENT_EMAIL}


def test_sign_url_and_urls_verify_and_fetch(world: World) -> None:
    public = world.iam.public_key(CUSTOMER_SA)
    one = world.client.sign_url(TENANT, world.mount, ODD_KEYS[0], ttl_seconds=600)
    verify(one.url, method="GET", now=NOW, signer=CUSTOMER_SA, public_key=public)
    assert requests.get(one.url, timeout=10).content == b"bytes of " + ODD_KEYS[0].encode()
    many = world.client.sign_urls(TENANT, world.mount, ODD_KEYS, ttl_seconds=600)
    assert [u.key for u in many] == ODD_KEYS
    for u in many:
        got = verify(u.url, method="GET", now=NOW, signer=CUSTOMER_SA, public_key=public)
        assert got.object_name == u.key


def test_list_prefix_with_the_minted_token_signs_each_entry(world: World) -> None:
    pages = list(world.client.list_prefix(TENANT, world.mount, sign_ttl_seconds=300))
    entries = [e for p in pages for e in p.entries]
    assert sorted(e.key for e in entries) == sorted(ODD_KEYS)
    public = world.iam.public_key(CUSTOMER_SA)
    for e in entries:
        verify(e.url, method="GET", now=NOW, signer=CUSTOMER_SA, public_key=public)
    assert set(world.iam.minted.values()) == {CUSTOMER_SA}


def test_a_withdrawn_grant_says_what_to_grant(world: World) -> None:
    world.iam.fail(403)
    try:
        with pytest.raises(FailedPrecondition) as denied:
            world.client.sign_urls(TENANT, world.mount, ODD_KEYS)
        world.iam.fail(429)
        with pytest.raises(Unavailable) as throttled:
            world.client.sign_url(TENANT, world.mount, ODD_KEYS[0])
    finally:
        world.iam.fail(None)
    assert denied.value.reason == "IMPERSONATION_NOT_GRANTED"
    assert "roles/iam.serviceAccountTokenCreator" in denied.value.message
    assert throttled.value.reason == "IAM_CREDENTIALS_UNAVAILABLE"


def test_registration_without_the_grant_is_refused(world: World) -> None:
    with pytest.raises(FailedPrecondition) as exc:
        world.client.register_credential(
            TENANT, KIND, {"service_account": "other@elsewhere.iam.gserviceaccount.com"}
        )
    assert exc.value.reason == "IMPERSONATION_NOT_GRANTED"


def test_cli_onboarding_table_and_json(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--address", world.srv.address, "--token-file", str(world.srv.data_dir / "admin.token")]
    assert main([*base, "onboarding", "--tenant", TENANT, "--kind", KIND]) == 0
    table = capsys.readouterr().out
    assert f"Grant access to: {CLIENT_EMAIL}" in table
    assert "gcloud iam service-accounts add-iam-policy-binding" in table
    assert main([*base, "--json", "onboarding", "--tenant", TENANT, "--kind", KIND]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["identity"] == CLIENT_EMAIL and data["kind"] == KIND
