"""Per-principal rate and concurrency limits through the real server: the noisy caller
gets RESOURCE_EXHAUSTED with RetryInfo while the quiet one keeps succeeding; overrides
from the policy file; every refusal audited."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from core.secrets_fixtures import sample
from core.test_shutdown import SlowProvider

from bucketvault import errors
from bucketvault.auth.authn import hash_token, load_policy_file
from bucketvault.client import BucketVaultClient
from bucketvault.config import CallLimits, Config
from bucketvault.grpc.limits import CallLimiter
from bucketvault.grpc.status import error_info, retry_delay
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.models import Limits, Principal
from bucketvault.providers.base import CloudProvider
from bucketvault.service import ADMIN_TOKEN_FILE
from bucketvault.testing.fakes import LocalProvider, local_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import signer_pb2

TENANT = "acme"


def _data_dir(
    tmp_path: Path, limits: Mapping[str, Mapping[str, Any]]
) -> tuple[Path, dict[str, str]]:
    """A data directory whose policy names admin (unlimited), noisy and quiet, each
    entry with limits[name] when given."""
    data_dir = tmp_path / f"bv-{secrets.token_hex(4)}"
    data_dir.mkdir(mode=0o700)
    tokens = {n: "bv_" + secrets.token_urlsafe(32) for n in ("admin", "noisy", "quiet")}
    entries = []
    for name, token in tokens.items():
        entry: dict[str, Any] = {
            "name": name,
            "token_sha256": hash_token(token),
            "roles": ["signer", "operator", "auditor"] if name == "admin" else ["signer"],
            "tenants": ["*"] if name == "admin" else [TENANT],
            "limits": {"rps": 0, "concurrency": 0} if name == "admin" else {},
        }
        if name in limits:
            entry["limits"] = dict(limits[name])
        entries.append(entry)
    (data_dir / "policy.json").write_text(json.dumps({"principals": entries}))
    (data_dir / ADMIN_TOKEN_FILE).write_text(tokens["admin"] + "\n")
    return data_dir, tokens


def _mount(srv: RunningServer) -> str:
    c = srv.client()
    cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
    return c.create_mount(TENANT, name="m", bucket="b", credential_id=cred.credential_id).mount_id


def _raw_sign(srv: RunningServer, token: str, mount_id: str) -> grpc.RpcError | None:
    """One SignURL on a raw stub: the RpcError (status details intact), or None."""
    client = srv.client(token)
    try:
        client.signer.SignURL(
            signer_pb2.SignURLRequest(tenant=TENANT, mount_id=mount_id, key="a.jpg"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
    except grpc.RpcError as exc:
        return exc
    return None


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[RunningServer, dict[str, str], str]]:
    # Server defaults: 2 calls/s, a burst of 3; quiet has no override.
    data_dir, tokens = _data_dir(tmp_path, {})
    env = {"BUCKETVAULT_LIMIT_RPS": "2", "BUCKETVAULT_LIMIT_BURST": "3"}
    with start_server(tmp_path, env=env, data_dir=data_dir, providers=local_providers()) as srv:
        yield srv, tokens, _mount(srv)


def test_noisy_caller_is_rate_limited_while_quiet_caller_succeeds(
    limited: tuple[RunningServer, dict[str, str], str],
) -> None:
    srv, tokens, mount_id = limited
    noisy, quiet = srv.client(tokens["noisy"]), srv.client(tokens["quiet"])
    refused = []
    for i in range(10):
        try:
            noisy.sign_url(TENANT, mount_id, f"n/{i}.jpg")
        except errors.ResourceExhausted as exc:
            refused.append(exc)
        if i % 5 == 0:
            quiet.sign_url(TENANT, mount_id, f"q/{i}.jpg")  # never refused
    assert len(refused) >= 5
    assert {e.reason for e in refused} == {"RATE_LIMITED"}
    assert refused[0].metadata["rps"] == "2"
    error = _raw_sign(srv, tokens["noisy"], mount_id)
    assert isinstance(error, grpc.Call)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error)[0] == "RATE_LIMITED"
    delay = retry_delay(error)
    assert delay is not None and 0 < delay <= 0.5  # one token at 2/s
    # A batch is one call (the quiet caller's third, within its own burst of 3).
    assert len(quiet.sign_urls(TENANT, mount_id, [f"b/{i}" for i in range(20)])) == 20
    # Every refusal is in the audit, as the noisy caller's, with its reason.
    audited = [
        r for r in srv.client().query_audit(TENANT, principal="noisy") if r.reason == "RATE_LIMITED"
    ]
    assert len(audited) == len(refused) + 1
    assert {r.action for r in audited} == {"signer.sign"}
    assert {r.status for r in audited} == {"RESOURCE_EXHAUSTED"}
    assert srv.client().verify_audit(full=True).ok


def test_policy_overrides_the_defaults(tmp_path: Path) -> None:
    # Generous defaults; noisy is held to 1 call/s with a burst of 2, quiet to none.
    data_dir, tokens = _data_dir(tmp_path, {"noisy": {"rps": 1, "burst": 2}, "quiet": {"rps": 0}})
    env = {"BUCKETVAULT_LIMIT_RPS": "1000", "BUCKETVAULT_LIMIT_BURST": "5"}
    with start_server(tmp_path, env=env, data_dir=data_dir, providers=local_providers()) as srv:
        mount_id = _mount(srv)
        noisy, quiet = srv.client(tokens["noisy"]), srv.client(tokens["quiet"])
        noisy.sign_url(TENANT, mount_id, "a.jpg")
        noisy.sign_url(TENANT, mount_id, "a.jpg")
        with pytest.raises(errors.ResourceExhausted) as exc:
            noisy.sign_url(TENANT, mount_id, "a.jpg")
        assert exc.value.reason == "RATE_LIMITED"
        for _ in range(20):  # quiet's override: no rate limit, past the default burst
            quiet.sign_url(TENANT, mount_id, "a.jpg")


def test_concurrency_limit_with_slow_calls(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    providers: list[CloudProvider] = [
        SlowProvider(p, started, release) if p.name == "gcs" and isinstance(p, LocalProvider) else p
        for p in local_providers()
    ]
    data_dir, tokens = _data_dir(tmp_path, {"noisy": {"concurrency": 1}})
    env = {"BUCKETVAULT_LIMIT_CONCURRENCY": "4"}
    with start_server(tmp_path, env=env, data_dir=data_dir, providers=providers) as srv:
        mount_id = _mount(srv)
        noisy, quiet = srv.client(tokens["noisy"]), srv.client(tokens["quiet"])
        listed: dict[str, Any] = {}

        def listing(client: BucketVaultClient, key: str) -> None:
            listed[key] = list(client.list_prefix(TENANT, mount_id))

        slow = threading.Thread(target=listing, args=(noisy, "noisy"))
        slow.start()
        try:
            assert started.wait(10)
            with pytest.raises(errors.ResourceExhausted) as exc:
                noisy.get_mount(TENANT, mount_id)
            assert exc.value.reason == "TOO_MANY_CONCURRENT_CALLS"
            raw = _raw_sign(srv, tokens["noisy"], mount_id)
            assert isinstance(raw, grpc.Call) and retry_delay(raw) == pytest.approx(0.1)
            # The quiet caller is not held by the noisy one's calls in flight.
            assert quiet.get_mount(TENANT, mount_id).mount_id == mount_id
            quiet_lister = threading.Thread(target=listing, args=(quiet, "quiet"))
            quiet_lister.start()
        finally:
            release.set()
        slow.join(10)
        quiet_lister.join(10)
        assert listed["noisy"] and listed["quiet"]
        # The slot is free again once the stream ended.
        assert noisy.get_mount(TENANT, mount_id).mount_id == mount_id
        audited = [
            r
            for r in srv.client().query_audit(TENANT, principal="noisy")
            if r.reason == "TOO_MANY_CONCURRENT_CALLS"
        ]
        assert {r.action for r in audited} == {"vault.get_mount", "signer.sign"}


def test_limiter_units() -> None:
    now = [0.0]
    limiter = CallLimiter(CallLimits(rps=10.0, burst=2, concurrency=1), clock=lambda: now[0])
    p = Principal("p", frozenset(), frozenset({TENANT}))
    assert limiter.limits_for(p) == (10.0, 2, 1)
    own = Principal("o", frozenset(), frozenset({TENANT}), limits=Limits(rps=4.0))
    assert limiter.limits_for(own) == (4.0, 4, 1)  # a second's worth of its own rate
    with limiter.admit(p):
        assert limiter.in_flight("p") == 1
    assert limiter.in_flight("p") == 0
    with limiter.admit(p), pytest.raises(errors.ResourceExhausted) as exc, limiter.admit(p):
        pass
    assert exc.value.retry_after == pytest.approx(0.1)
    with pytest.raises(errors.ResourceExhausted) as exc, limiter.admit(p):
        pass
    assert exc.value.reason == "RATE_LIMITED"
    assert exc.value.retry_after == pytest.approx(0.1)  # 1 token at 10/s
    assert limiter.in_flight("p") == 0
    now[0] += 0.1
    with limiter.admit(p):
        pass
    # TokenBuckets.take is unchanged for the link listener.
    buckets = TokenBuckets(1.0, 1, clock=lambda: now[0])
    assert buckets.take("x") and not buckets.take("x")


def test_config_limits() -> None:
    assert Config.from_env({}).limits == CallLimits(0.0, 1, 0)
    cfg = Config.from_env({"BUCKETVAULT_LIMIT_RPS": "50", "BUCKETVAULT_LIMIT_CONCURRENCY": "8"})
    assert cfg.limits == CallLimits(50.0, 50, 8)
    with pytest.raises(errors.InvalidArgument):
        Config.from_env({"BUCKETVAULT_LIMIT_BURST": "0"})


@pytest.mark.parametrize(
    ("limits", "where"),
    [
        ({"rate": 5}, "has unknown keys"),
        ({"rps": -1}, "limits.rps"),
        ({"rps": True}, "limits.rps"),
        ({"burst": 0}, "limits.burst"),
        ({"concurrency": 1.5}, "limits.concurrency"),
        ([5], "must be an object"),
    ],
)
def test_policy_limits_parse_strictly(tmp_path: Path, limits: object, where: str) -> None:
    path = tmp_path / "policy.json"
    entry = {"name": "p", "token_sha256": "0" * 64, "roles": ["signer"], "limits": limits}
    path.write_text(json.dumps({"principals": [entry]}))
    with pytest.raises(errors.InvalidArgument) as exc:
        load_policy_file(path)
    assert exc.value.reason == "INVALID_POLICY"
    assert where in exc.value.message


def test_policy_limits_parse(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    entry = {
        "name": "p",
        "token_sha256": "0" * 64,
        "roles": ["signer"],
        "limits": {"rps": 2.5, "burst": 10, "concurrency": 3},
    }
    path.write_text(json.dumps({"principals": [entry]}))
    (principal,) = load_policy_file(path).principals
    assert principal.limits == Limits(2.5, 10, 3)
