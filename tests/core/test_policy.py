"""Policy files with grants: parsing (bad files rejected whole), the decision, reloading."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from core.policy_support import ADMIN, policy_server, write_policy

from bucketvault import errors
from bucketvault.auth.authn import Policy, TokenAuthenticator, load_policy_file
from bucketvault.auth.authz import Ask, Reach, decide
from bucketvault.auth.reload import PolicyWatcher
from bucketvault.models import Grant, Method, Principal, Role

HASH = "ab" * 32
GRANT = {"tenant": "acme", "mounts": ["photos"], "prefixes": ["2024/"], "methods": ["GET"]}


def _file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"principals": list(entries)}))
    return path


def _entry(**over: Any) -> dict[str, Any]:
    return {"name": "p", "token_sha256": HASH, "roles": ["signer"], **over}


def test_grants_are_parsed_and_name_the_tenants(tmp_path: Path) -> None:
    policy = load_policy_file(
        _file(tmp_path, _entry(grants=[{**GRANT, "max_ttl_seconds": 300}, {"tenant": "*"}]))
    )
    (principal,) = policy.principals
    assert principal.tenants == {"acme", "*"}
    assert principal.grants[0] == Grant(
        "acme", frozenset({"photos"}), ("2024/",), frozenset({Method.GET}), 300
    )
    assert principal.grants[1] == Grant("*")
    # acme sees its own grant and the all-tenant one; another tenant only the latter.
    assert principal.grants_for("acme") == principal.grants
    assert principal.grants_for("globex") == (Grant("*"),)


def test_an_entry_without_grants_keeps_its_meaning(tmp_path: Path) -> None:
    (principal,) = load_policy_file(_file(tmp_path, _entry(tenants=["acme"]))).principals
    assert principal.grants == () and principal.scope() == (Grant("acme"),)
    assert principal.grants_for("globex") == ()


BAD_ENTRIES: dict[str, dict[str, Any]] = {
    "misspelt grants key": _entry(grant=[GRANT]),
    "tenants and grants": _entry(tenants=["acme"], grants=[GRANT]),
    "grants not a list": _entry(grants=GRANT),
    "unknown grant key": _entry(grants=[{**GRANT, "prefix": ["x/"]}]),
    "grant without tenant": _entry(grants=[{"mounts": ["photos"]}]),
    "bad tenant name": _entry(grants=[{"tenant": "ACME!"}]),
    "empty mounts": _entry(grants=[{"tenant": "acme", "mounts": []}]),
    "bad mount ref": _entry(grants=[{"tenant": "acme", "mounts": ["a/b"]}]),
    "prefix with ..": _entry(grants=[{"tenant": "acme", "prefixes": ["a/../b/"]}]),
    "prefix with leading /": _entry(grants=[{"tenant": "acme", "prefixes": ["/a"]}]),
    "unknown method": _entry(grants=[{"tenant": "acme", "methods": ["DELETE"]}]),
    "ttl zero": _entry(grants=[{"tenant": "acme", "max_ttl_seconds": 0}]),
    "ttl too long": _entry(grants=[{"tenant": "acme", "max_ttl_seconds": 10**9}]),
    "ttl not an int": _entry(grants=[{"tenant": "acme", "max_ttl_seconds": "300"}]),
    "ttl a bool": _entry(grants=[{"tenant": "acme", "max_ttl_seconds": True}]),
    "roles not a list": _entry(roles="signer", tenants=["acme"]),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_bad_entry_rejects_the_whole_file(tmp_path: Path, case: str) -> None:
    good = {"name": "ok", "token_sha256": "cd" * 32, "roles": ["signer"], "tenants": ["acme"]}
    with pytest.raises(errors.InvalidArgument) as exc:
        load_policy_file(_file(tmp_path, good, BAD_ENTRIES[case]))
    assert exc.value.reason == "INVALID_POLICY"
    assert "principals[1]" in exc.value.message
    assert HASH not in exc.value.message


def test_two_entries_with_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="name"):
        load_policy_file(
            _file(tmp_path, _entry(tenants=["a"]), _entry(token_sha256="cd" * 32, tenants=["b"]))
        )


def _mount(name: str = "photos", prefix: str = "img/") -> Any:
    from datetime import UTC, datetime

    from bucketvault.models import Mount, MountPolicy

    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = MountPolicy(3600, frozenset(Method))
    return Mount(f"mnt_{name}", "acme", name, "b", prefix, "", "", "cred_x", policy, 1, now, now)


def test_one_grant_must_allow_the_whole_call() -> None:
    principal = Principal(
        "p",
        frozenset({Role.SIGNER}),
        frozenset({"acme"}),
        grants=(
            Grant("acme", prefixes=("a/",), methods=frozenset({Method.GET})),
            Grant("acme", prefixes=("b/",), methods=frozenset({Method.PUT}), max_ttl_seconds=60),
        ),
    )
    mount = _mount()

    def ask(method: Method, ttl: int, *keys: str) -> str:
        d = decide(principal, Ask((Role.SIGNER,), "acme", Reach.MOUNT, mount, method, ttl, keys))
        return "ok" if d.allowed else d.reason

    assert ask(Method.GET, 900, "img/a/1") == "ok"
    assert ask(Method.PUT, 60, "img/b/1") == "ok"
    # PUT comes from one grant, the a/ prefix from the other: not combined.
    assert ask(Method.PUT, 60, "img/a/1") == "PREFIX_NOT_GRANTED"
    assert ask(Method.PUT, 61, "img/b/1") == "TTL_OVER_PRINCIPAL_CAP"
    assert ask(Method.HEAD, 60, "img/a/1") == "METHOD_NOT_GRANTED"
    # Prefixes are relative to the mount's own prefix.
    assert ask(Method.GET, 60, "a/1") == "PREFIX_NOT_GRANTED"
    # Every key of a batch.
    assert ask(Method.GET, 60, "img/a/1", "img/b/1") == "PREFIX_NOT_GRANTED"


# -- reload ----------------------------------------------------------------------------


def _policy_with(path: Path, *names: str) -> dict[str, str]:
    return write_policy(
        path, [{"name": n, "roles": ["signer"], "tenants": ["acme"]} for n in names]
    )


def _authenticates(authn: TokenAuthenticator, token: str) -> str | None:
    try:
        return authn.authenticate(f"Bearer {token}").name
    except errors.Unauthenticated:
        return None


def test_a_changed_file_is_picked_up_and_a_bad_one_keeps_the_old_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.json"
    first = _policy_with(path, "one")
    watcher = PolicyWatcher.open(path)
    authn = watcher.authenticator
    assert watcher.poll() is None  # unchanged
    second = _policy_with(path, "one", "two")
    assert watcher.poll() is True
    assert _authenticates(authn, second["two"]) == "two"
    assert _authenticates(authn, first["one"]) is None  # its token was replaced too
    serving = authn.policy
    secret_looking = "bv_" + "s" * 40
    path.write_text(json.dumps({"principals": [{"name": secret_looking, "token_sha256": 1}]}))
    with caplog.at_level(logging.ERROR, logger="bucketvault.auth.reload"):
        assert watcher.poll() is False
    assert authn.policy is serving
    assert _authenticates(authn, second["two"]) == "two"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "INVALID_POLICY" in record.getMessage()
    assert secret_looking not in caplog.text
    # A rejected file is not re-read (and re-logged) every poll; a fixed one is picked up.
    assert watcher.poll() is None
    third = _policy_with(path, "three")
    assert watcher.poll() is True and _authenticates(authn, third["three"]) == "three"


def test_not_json_and_a_deleted_file_keep_the_old_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    tokens = _policy_with(path, "one")
    watcher = PolicyWatcher.open(path)
    path.write_text("{not json")
    assert watcher.reload() is False
    path.unlink()
    assert watcher.poll() is False
    assert _authenticates(watcher.authenticator, tokens["one"]) == "one"


def test_the_watcher_thread_polls_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    _policy_with(path, "one")
    ticks = threading.Semaphore(0)
    stop = threading.Event()

    def wait(seconds: float) -> bool:
        # Each poll waits for the test to allow it: no sleeping on the real interval.
        while not ticks.acquire(timeout=0.05):
            if stop.is_set():
                return True
        return stop.is_set()

    authn = TokenAuthenticator(Policy({}, {}))
    watcher = PolicyWatcher(path, authn, wait=wait)
    watcher._seen = None  # never read: the first poll loads it
    watcher.start()
    try:
        ticks.release()
        deadline = time.monotonic() + 5
        while not authn.policy.principals and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [p.name for p in authn.policy.principals] == ["one"]
    finally:
        stop.set()
        watcher.stop()


def test_the_service_reloads_on_demand_and_on_change(tmp_path: Path) -> None:
    entries = [{"name": "viewer", "roles": ["signer"], "tenants": ["acme"]}]
    with policy_server(tmp_path, entries) as server:
        assert server.service is not None
        path = server.data_dir / "policy.json"
        new = write_policy(
            path, [ADMIN, *entries, {"name": "late", "roles": ["operator"], "tenants": ["acme"]}]
        )
        # The SIGHUP path: bucketvault serve's handler calls this method.
        assert server.service.reload_policy() is True
        late = server.client(new["late"])
        assert list(late.list_credentials("acme")) == []
        with pytest.raises(errors.Unauthenticated):
            list(server.client(server.tokens["viewer"]).list_mounts("acme"))
        # A bad file is refused and the policy in force keeps serving.
        path.write_text('{"principals": [{"name": "x"}]}')
        assert server.service.reload_policy() is False
        assert list(late.list_credentials("acme")) == []
        # The poll path: a change is seen by the watcher the service owns.
        newer = write_policy(
            path, [ADMIN, {"name": "later", "roles": ["auditor"], "tenants": ["*"]}]
        )
        assert server.service.policy is not None and server.service.policy.poll() is True
        assert server.client(newer["later"]).verify_audit().ok
