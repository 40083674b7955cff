"""Link tokens, the revocation cache, the rate limiter and the listener's settings, alone."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bucketvault.app.common import need_keys
from bucketvault.clock import FrozenClock
from bucketvault.config import Config
from bucketvault.errors import InvalidArgument, NotFound
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.links import LinkClaims, LinkCodec, Revocations
from bucketvault.models import Method

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEYS = {"lk_" + "1" * 16: b"k" * 32, "lk_" + "2" * 16: b"j" * 32}
CLAIMS = LinkClaims(
    "lnk_" + "a" * 20,
    "acme",
    "mnt_x",
    "img/ü b.png",
    True,
    frozenset({Method.GET, Method.HEAD}),
    NOW + timedelta(days=1),
    600,
)


def test_a_token_round_trips_under_any_trusted_key() -> None:
    old = LinkCodec("lk_" + "1" * 16, KEYS)
    token = old.mint(CLAIMS)
    assert old.verify(token) == CLAIMS
    # Rotated: new links use the new key, old links still verify.
    new = LinkCodec("lk_" + "2" * 16, KEYS)
    assert new.verify(token) == CLAIMS
    assert new.mint(CLAIMS).split(".")[0] != token.split(".")[0]
    never = LinkClaims(**{**CLAIMS.__dict__, "expires_at": None, "exact": False})
    assert old.verify(old.mint(never)) == never


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "lk_" + "3" * 16 + t[19:],
        lambda t: t.replace(".", "", 1),
        lambda t: t + "." + t,
        lambda t: "x" * 5000,
        lambda t: "",
    ],
)
def test_any_altered_token_is_not_found(tamper: object) -> None:
    codec = LinkCodec("lk_" + "1" * 16, KEYS)
    with pytest.raises(NotFound) as exc:
        codec.verify(tamper(codec.mint(CLAIMS)))  # type: ignore[operator]
    assert exc.value.reason == "LINK_NOT_FOUND"


def test_claims_changed_under_the_old_mac_are_not_found() -> None:
    codec = LinkCodec("lk_" + "1" * 16, KEYS)
    kid, body, mac = codec.mint(CLAIMS).split(".")
    raw = base64.urlsafe_b64decode(body + "==").replace(b'"x":1', b'"x":0')
    widened = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(NotFound):
        codec.verify(f"{kid}.{widened}.{mac}")
    # A key known under one id does not verify a token naming another.
    with pytest.raises(NotFound):
        LinkCodec("lk_" + "2" * 16, {"lk_" + "2" * 16: KEYS["lk_" + "1" * 16]}).verify(
            f"lk_{'2' * 16}.{body}.{mac}"
        )


class _Store:
    def __init__(self) -> None:
        self.revoked: frozenset[tuple[str, str, str]] = frozenset()
        self.reads = 0

    def link_revocations(self) -> frozenset[tuple[str, str, str]]:
        self.reads += 1
        return self.revoked


def test_revocations_refresh_after_their_interval_and_local_ones_apply_at_once() -> None:
    store, clock = _Store(), FrozenClock(NOW)
    cache = Revocations(store, clock, timedelta(seconds=10))
    assert not cache.is_revoked("acme", "m", "l1")
    store.revoked = frozenset({("acme", "m", "l1")})
    assert not cache.is_revoked("acme", "m", "l1")  # another replica's, not yet seen
    assert store.reads == 1
    clock.advance(timedelta(seconds=10))
    assert cache.is_revoked("acme", "m", "l1") and store.reads == 2
    assert not cache.is_revoked("acme", "other", "l1")
    cache.add("acme", "m", "l2")
    assert cache.is_revoked("acme", "m", "l2")


def test_token_buckets_refill_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(2, 3, clock=lambda: now[0], max_clients=2)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b")
    now[0] = 0.5
    assert buckets.take("a") and not buckets.take("a")
    buckets.take("c")  # over max_clients: the least recently seen ("b") is forgotten
    assert len(buckets._buckets) == 2


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"BUCKETVAULT_HTTP_LISTEN": "0.0.0.0:8080"}, "loopback"),
        (
            {"BUCKETVAULT_HTTP_LISTEN": "0.0.0.0:8080", "BUCKETVAULT_HTTP_ALLOW_PLAINTEXT": "1"},
            "PUBLIC_URL",
        ),
        (
            {
                "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
                "BUCKETVAULT_HTTP_PUBLIC_URL": "http://img.example.com",
            },
            "https",
        ),
        (
            {
                "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
                "BUCKETVAULT_HTTP_PUBLIC_URL": "https://img.example.com/path",
            },
            "https",
        ),
    ],
)
def test_listener_settings_that_stop_start_up(env: dict[str, str], problem: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        Config.from_env(env)
    assert problem in exc.value.message


def test_listener_settings() -> None:
    assert Config.from_env({}).http is None
    http = Config.from_env(
        {
            "BUCKETVAULT_HTTP_LISTEN": "0.0.0.0:8080",
            "BUCKETVAULT_HTTP_ALLOW_PLAINTEXT": "true",
            "BUCKETVAULT_HTTP_PUBLIC_URL": "https://img.example.com/",
            "BUCKETVAULT_HTTP_CORS_ORIGINS": "https://app.example.com, http://localhost:3000",
        }
    ).http
    assert http is not None
    assert http.public_url == "https://img.example.com"
    assert http.cors_origins == ("https://app.example.com", "http://localhost:3000")


def test_network_mode_settings() -> None:
    base = {"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0", "BUCKETVAULT_HTTP_NETWORK_MODE": "true"}
    with pytest.raises(InvalidArgument):
        Config.from_env(base)  # no client networks
    with pytest.raises(InvalidArgument):
        Config.from_env({**base, "BUCKETVAULT_HTTP_ALLOW_CIDRS": "10.0.0.0/33"})
    with pytest.raises(InvalidArgument):
        Config.from_env(
            {
                **base,
                "BUCKETVAULT_HTTP_ALLOW_CIDRS": "10.0.0.0/8",
                "BUCKETVAULT_HTTP_OIDC_ISSUER": "https://idp",
            }
        )  # no JWKS
    http = Config.from_env({**base, "BUCKETVAULT_HTTP_ALLOW_CIDRS": "10.0.0.0/8, fd00::/8"}).http
    assert http is not None and http.network_mode and len(http.allow_cidrs) == 2
    assert Config.from_env({"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0"}).http.network_mode is False  # type: ignore[union-attr]


def test_client_networks_ipv4_ipv6_and_mapped() -> None:
    import ipaddress

    from bucketvault.http.network import ClientNetworks

    nets = ClientNetworks((ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("fd00::/8")))
    assert nets.allows("10.1.2.3") and nets.allows("::ffff:10.1.2.3") and nets.allows("fd00::1")
    assert not nets.allows("10.2.0.1") and not nets.allows("fe80::1") and not nets.allows("")
    assert not nets.allows("not-an-address")


def test_oidc_expiry_follows_the_injected_clock(tmp_path: Path) -> None:
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from bucketvault.config import OidcConfig
    from bucketvault.errors import Unauthenticated
    from bucketvault.http.network import OidcVerifier

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "e1"}]}))
    clock = FrozenClock(NOW)
    verifier = OidcVerifier.from_config(OidcConfig("https://idp", "aud", path), clock)
    exp = int((NOW + timedelta(minutes=1)).timestamp())
    token = jwt.encode(
        {"iss": "https://idp", "aud": "aud", "sub": "bob", "exp": exp},
        key,
        algorithm="ES256",
        headers={"kid": "e1"},
    )
    assert verifier.verify(token) == "bob"
    assert verifier.token({"HTTP_AUTHORIZATION": f"Bearer {token}"}) == token
    clock.advance(timedelta(minutes=2))
    with pytest.raises(Unauthenticated) as exc:
        verifier.verify(token)
    assert exc.value.reason == "OIDC_TOKEN_INVALID"
    assert "bob" not in repr(verifier) and token not in str(exc.value)


@pytest.mark.parametrize(
    ("keys", "reason"), [([], "MISSING_FIELD"), (["a", "b", "c"], "BATCH_TOO_LARGE")]
)
def test_a_batch_needs_one_key_and_at_most_its_limit(keys: list[str], reason: str) -> None:
    need_keys(["a", "b"], 2)
    with pytest.raises(InvalidArgument) as info:
        need_keys(keys, 2)
    assert (info.value.reason, info.value.field) == (reason, "keys")
