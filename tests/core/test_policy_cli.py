"""`bucketvault token create` and `bucketvault policy explain`, against the real server."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from core.policy_support import policy_server, write_policy
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 2
    out, err = capsys.readouterr()
    return code, out, err


def _create(capsys: pytest.CaptureFixture[str], policy: Path, *args: str) -> str:
    code, out, err = _run(capsys, "token", "create", "--policy", str(policy), *args)
    assert code == 0, err
    return out


def test_token_create_prints_the_token_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    write_policy(policy, [{"name": "keep", "roles": ["auditor"], "tenants": ["*"], "comment": "x"}])
    before = json.loads(policy.read_text())["principals"][0]
    out = _create(
        capsys,
        policy,
        "--name",
        "thumbs",
        "--role",
        "signer",
        "--tenant",
        "acme",
        "--mount",
        "photos",
        "--prefix",
        "2024/",
        "--method",
        "GET",
        "--max-ttl",
        "300",
    )
    token = out.strip()
    assert out == token + "\n" and token.startswith("bv_") and len(token) > 40
    text = policy.read_text()
    assert token not in text
    doc = json.loads(text)
    assert doc["principals"][0] == before  # other entries are kept as written
    entry = doc["principals"][1]
    assert entry == {
        "name": "thumbs",
        "roles": ["signer"],
        "grants": [
            {
                "tenant": "acme",
                "mounts": ["photos"],
                "prefixes": ["2024/"],
                "methods": ["GET"],
                "max_ttl_seconds": 300,
            }
        ],
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    assert stat.S_IMODE(os.stat(policy).st_mode) == 0o600
    # Without grant options: today's entry, roles on tenants.
    _create(capsys, policy, "--name", "ops", "--role", "operator", "--tenant", "acme")
    assert json.loads(policy.read_text())["principals"][2]["tenants"] == ["acme"]


def test_token_create_refuses_a_duplicate_name_unless_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    first = _create(capsys, policy, "--name", "n", "--role", "signer", "--tenant", "acme").strip()
    text = policy.read_text()
    code, out, err = _run(
        capsys,
        "token",
        "create",
        "--policy",
        str(policy),
        "--name",
        "n",
        "--role",
        "signer",
        "--tenant",
        "acme",
    )
    assert code == 1 and out == "" and "--replace" in err
    assert policy.read_text() == text
    second = _create(
        capsys, policy, "--name", "n", "--role", "operator", "--tenant", "acme", "--replace"
    ).strip()
    (entry,) = json.loads(policy.read_text())["principals"]
    assert entry["roles"] == ["operator"]
    assert entry["token_sha256"] == hashlib.sha256(second.encode()).hexdigest() != first


def test_token_create_refuses_what_the_server_would_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    _create(capsys, policy, "--name", "n", "--role", "signer", "--tenant", "acme")
    text = policy.read_text()
    code, out, err = _run(
        capsys,
        "token",
        "create",
        "--policy",
        str(policy),
        "--name",
        "m",
        "--role",
        "signer",
        "--tenant",
        "acme",
        "--prefix",
        "a/../b/",
    )
    assert code == 1 and out == "" and "INVALID_POLICY" in err
    assert policy.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]  # no temp left


def _explain(capsys: pytest.CaptureFixture[str], policy: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = _run(capsys, "--json", "policy", "explain", "--policy", str(policy), *args)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def _says_allowed(
    rows: list[dict[str, Any]],
    tenant: str,
    mount: tuple[str, str],
    key: str,
    method: str,
    ttl: int,
) -> bool:
    """Read explain's rules as its documentation says: one rule must allow all of it."""

    def ok(value: Any, test: Any) -> bool:
        return value == "*" or bool(test(value))

    return any(
        r["tenant"] in (tenant, "*")
        and "signer" in r["roles"]
        and ok(r["mounts"], lambda ms: set(ms) & set(mount))
        and ok(r["prefixes"], lambda ps: any(key.startswith(p) for p in ps))
        and ok(r["methods"], lambda ms: method in ms)
        and ok(r["max_ttl_seconds"], lambda most: ttl <= most)
        for r in rows
    )


def test_explain_says_allowed_iff_the_server_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with policy_server(tmp_path, []) as server:
        assert server.service is not None
        admin = server.client()
        mounts: dict[str, tuple[str, str]] = {}
        for tenant, name in (("acme", "photos"), ("acme", "other"), ("globex", "photos")):
            cred = admin.register_credential(tenant, "GCS_HMAC", sample("GCS_HMAC"))
            m = admin.create_mount(
                tenant,
                name=name,
                bucket="b",
                credential_id=cred.credential_id,
                allowed_methods=["GET", "HEAD", "PUT"],
                max_ttl_seconds=3600,
            )
            mounts[f"{tenant}/{name}"] = (m.mount_id, name)
        policy = server.data_dir / "policy.json"
        other_id = mounts["acme/other"][0]
        specs = {
            "a": [
                "--tenant",
                "acme",
                "--mount",
                "photos",
                "--prefix",
                "2024/",
                "--method",
                "GET",
                "--max-ttl",
                "300",
            ],
            "b": ["--tenant", "acme"],
            "c": ["--tenant", "acme", "--tenant", "globex", "--mount", other_id, "--method", "PUT"],
            "e": ["--tenant", "*", "--prefix", "2024/"],
        }
        tokens = {
            n: _create(capsys, policy, "--name", n, "--role", "signer", *a).strip()
            for n, a in specs.items()
        }
        tokens["d"] = _create(
            capsys, policy, "--name", "d", "--role", "operator", "--tenant", "acme"
        ).strip()
        assert server.service.reload_policy()
        by_principal = {n: _explain(capsys, policy, "--principal", n) for n in tokens}
        by_mount = {
            where: _explain(
                capsys,
                policy,
                "--tenant",
                where.split("/")[0],
                "--mount",
                ref[0],
                "--mount",
                ref[1],
            )
            for where, ref in mounts.items()
        }
        clients = {n: server.client(t) for n, t in tokens.items()}
        seen = set()
        for name, where, key, method, ttl in itertools.product(
            tokens, mounts, ("2024/a.jpg", "2023/a.jpg"), ("GET", "PUT"), (60, 600)
        ):
            tenant = where.split("/")[0]
            mount = mounts[where]
            said = _says_allowed(by_principal[name], tenant, mount, key, method, ttl)
            rows = [r for r in by_mount[where] if r["principal"] == name]
            assert _says_allowed(rows, tenant, mount, key, method, ttl) == said
            try:
                clients[name].sign_url(tenant, mount[0], key, method=method, ttl_seconds=ttl)
                allowed = True
            except errors.PermissionDenied:
                allowed = False
            assert allowed == said, (name, where, key, method, ttl)
            seen.add(allowed)
        assert seen == {True, False}


def test_explain_prints_a_table_and_refuses_an_unknown_principal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    _create(
        capsys,
        policy,
        "--name",
        "t",
        "--role",
        "signer",
        "--tenant",
        "acme",
        "--method",
        "HEAD",
        "--method",
        "GET",
    )
    code, out, _ = _run(capsys, "policy", "explain", "--policy", str(policy), "--tenant", "acme")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == [
        "PRINCIPAL",
        "TENANT",
        "ROLES",
        "MOUNTS",
        "PREFIXES",
        "METHODS",
        "MAX_TTL_SECONDS",
    ]
    assert row.split() == ["t", "acme", "signer", "*", "*", "GET,HEAD", "*"]
    code, _, err = _run(capsys, "policy", "explain", "--policy", str(policy), "--principal", "x")
    assert code == 3 and "NOT_FOUND" in err  # exit 3: not found (README, "The CLI")
