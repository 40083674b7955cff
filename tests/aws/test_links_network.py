"""Network mode, per-link and per-client rate limits and the open-count metric, through
the real server: opens over HTTP from two loopback source addresses, OIDC tokens signed
by a JWKS made here, redirects followed to moto, counts read from /metrics."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import jwt
import pytest
import requests
from aws.aws_support import Peer
from cryptography.hazmat.primitives.asymmetric import rsa

from bucketvault.testing.server import RunningServer, start_server

pytestmark = pytest.mark.moto

TENANT = "acme"
BUCKET = "links-net"
ISSUER = "https://idp.test"
AUDIENCE = "bucketvault-links"


def _s3(moto: Peer) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="img/a.txt", Body=b"inside")


def _mount(srv: RunningServer, moto: Peer) -> tuple[str, str]:
    c = srv.client()
    cred = c.register_credential(
        TENANT,
        "S3_ACCESS_KEY",
        {"access_key_id": "AKIDNET", "secret_access_key": "s", "endpoint_url": moto.url},
    )
    mount = c.create_mount(
        TENANT,
        name=f"net-{cred.credential_id[-6:]}",
        bucket=BUCKET,
        prefix="img/",
        credential_id=cred.credential_id,
        region="us-east-1",
    )
    return str(mount.mount_id), str(cred.credential_id)


def _open(
    url: str, source: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """GET url from a chosen loopback source address (all of 127/8 is this machine)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    conn = http.client.HTTPConnection(name, int(port), timeout=10, source_address=(source, 0))
    conn.request("GET", "/" + rest, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _metric(srv: RunningServer, mode: str, outcome: str) -> float:
    assert srv.service is not None
    text = requests.get(srv.service.metrics_server.url, timeout=10).text
    pattern = rf'^bucketvault_link_opens_total\{{mode="{mode}",outcome="{outcome}"\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found[1]) if found else 0.0


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwt(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = datetime.now(UTC)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def network(
    moto: Peer, tmp_path_factory: pytest.TempPathFactory, signing_key: rsa.RSAPrivateKey
) -> Iterator[RunningServer]:
    _s3(moto)
    tmp = tmp_path_factory.mktemp("net")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    (tmp / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    env = {
        "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_HTTP_NETWORK_MODE": "true",
        "BUCKETVAULT_HTTP_ALLOW_CIDRS": "127.0.0.1/32, ::1/128",
        "BUCKETVAULT_HTTP_OIDC_JWKS_FILE": str(tmp / "jwks.json"),
        "BUCKETVAULT_HTTP_OIDC_ISSUER": ISSUER,
        "BUCKETVAULT_HTTP_OIDC_AUDIENCE": AUDIENCE,
        "BUCKETVAULT_HTTP_OIDC_COOKIE": "session",
        "BUCKETVAULT_HTTP_LINK_RATE_PER_SECOND": "1",
        "BUCKETVAULT_HTTP_LINK_RATE_BURST": "5",
        "BUCKETVAULT_METRICS_LISTEN": "127.0.0.1:0",
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_REGION": "us-east-1",
    }
    with start_server(tmp, env=env) as srv:
        yield srv


def test_network_mode_admits_allowed_addresses_with_a_good_token(
    network: RunningServer, moto: Peer, signing_key: rsa.RSAPrivateKey
) -> None:
    mount_id, cred_id = _mount(network, moto)
    base = network.client().create_link(TENANT, mount_id, "img/a.txt").url.split("/l/")[0]
    url = f"{base}/n/{TENANT}/{mount_id}/img/a.txt"
    good = {"Authorization": "Bearer " + _jwt(signing_key)}
    before = _metric(network, "network", "redirected")
    opened = _open(url, headers=good)
    assert opened.status == 302
    assert requests.get(opened.headers["Location"], timeout=10).content == b"inside"
    assert _open(url, headers={"Cookie": "session=" + _jwt(signing_key)}).status == 302
    assert _metric(network, "network", "redirected") == before + 2

    # Outside the allowed networks: 403 and no detail, whatever the token.
    outside = _open(url, source="127.0.0.2", headers=good)
    assert outside.status == 403 and "Location" not in outside.headers
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer " + _jwt(signing_key, exp=1_000_000)},  # expired
        {"Authorization": "Bearer " + _jwt(signing_key, aud="someone-else")},
        {"Authorization": "Bearer " + _jwt(signing_key, iss="https://evil.test")},
        {"Authorization": "Bearer " + _jwt(other)},  # not the JWKS's key
        {"Authorization": "Bearer " + jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")},
    ):
        refused = _open(url, headers=bad)
        assert refused.status == 401 and "Location" not in refused.headers, bad

    # A key outside the mount, another mount, a revoked credential: 404.
    assert _open(f"{base}/n/{TENANT}/{mount_id}/other/x", headers=good).status == 404
    assert _open(f"{base}/n/{TENANT}/mnt_nope/img/a.txt", headers=good).status == 404
    network.client().revoke_credential(TENANT, cred_id)
    assert _open(url, headers=good).status == 404

    records = [r for r in network.client().query_audit(TENANT) if r.mount_id == mount_id]
    outcomes = {(r.principal, r.outcome, r.reason) for r in records if r.action == "link.open"}
    assert ("oidc:alice", "ok", "") in outcomes
    assert ("oidc:alice", "error", "CREDENTIAL_REVOKED") in outcomes
    assert _metric(network, "network", "forbidden") >= 1
    assert _metric(network, "network", "unauthenticated") >= 7


def test_a_link_over_its_rate_is_throttled_and_another_is_not(
    network: RunningServer, moto: Peer
) -> None:
    mount_id, _ = _mount(network, moto)
    hot, cold = network.client().create_links(TENANT, mount_id, ["img/a.txt", "img/a.txt"])
    before = _metric(network, "token", "rate_limited")
    # Burst 5 per link across clients: two source addresses share the hot link's bucket.
    codes = [_open(hot.url, source=s).status for s in ("127.0.0.1", "127.0.0.3") * 5]
    assert codes[:5] == [302] * 5 and 429 in codes[5:]
    throttled = _open(hot.url, source="127.0.0.4")
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert _open(cold.url).status == 302
    assert _metric(network, "token", "rate_limited") >= before + 2
    denied = [
        r
        for r in network.client().query_audit(TENANT)
        if r.principal == f"link:{hot.link_id}" and r.reason == "LINK_RATE_LIMITED"
    ]
    assert denied and all(r.outcome == "denied" for r in denied)


def test_a_client_over_its_rate_is_throttled_and_another_is_not(tmp_path: Path, moto: Peer) -> None:
    env = {
        "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_HTTP_RATE_PER_SECOND": "1",
        "BUCKETVAULT_HTTP_RATE_BURST": "2",
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_REGION": "us-east-1",
    }
    with start_server(tmp_path, env=env) as srv:
        mount_id, _ = _mount(srv, moto)
        link = srv.client().create_link(TENANT, mount_id, "img/a.txt")
        codes = [_open(link.url, source="127.0.0.5").status for _ in range(4)]
        assert codes[:2] == [302, 302] and 429 in codes[2:]
        assert _open(link.url, source="127.0.0.6").status == 302
