"""The operator CLI against a real server, and `bucketvault serve` bootstrapping a data dir."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from core.conftest import PRINCIPALS
from core.secrets_fixtures import sample
from cryptography import x509

from bucketvault.cli.main import main
from bucketvault.client import BucketVaultClient
from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.server import RunningServer, start_server, start_server_process
from bucketvault.testing.tls import LocalCA, served_certificate


def _cli(
    server: RunningServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    token_file = server.data_dir / "admin.token"
    code = main(["--address", server.address, "--token-file", str(token_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_register_list_show_revoke(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "hmac.json"
    secret_file.write_text(json.dumps(sample("GCS_HMAC", "CLICANARY")))
    code, out, _ = _cli(
        server,
        capsys,
        "--json",
        "credentials",
        "register",
        "--tenant",
        "acme",
        "--kind",
        "GCS_HMAC",
        "--from-file",
        str(secret_file),
        "--name",
        "from-cli",
    )
    assert code == 0
    cred = json.loads(out)
    assert cred["display_name"] == "from-cli" and "CLICANARY" not in out
    code, out, _ = _cli(server, capsys, "credentials", "list", "--tenant", "acme")
    assert code == 0 and cred["credential_id"] in out and "CREDENTIAL_ID" in out
    code, out, _ = _cli(
        server,
        capsys,
        "--json",
        "credentials",
        "show",
        "--tenant",
        "acme",
        "--id",
        cred["credential_id"],
    )
    assert json.loads(out)["state"] == "ACTIVE"
    code, out, _ = _cli(
        server,
        capsys,
        "mounts",
        "create",
        "--tenant",
        "acme",
        "--name",
        "m",
        "--bucket",
        "b",
        "--credential",
        cred["credential_id"],
        "--methods",
        "GET,HEAD",
    )
    assert code == 0 and "mount_id" in out
    code, out, _ = _cli(
        server,
        capsys,
        "--json",
        "credentials",
        "revoke",
        "--tenant",
        "acme",
        "--id",
        cred["credential_id"],
    )
    assert json.loads(out)["state"] == "REVOKED"


def test_register_from_stdin(
    server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    payload = json.dumps(sample("GCS_HMAC")).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    code, out, _ = _cli(
        server,
        capsys,
        "--json",
        "credentials",
        "register",
        "--tenant",
        "acme",
        "--kind",
        "GCS_HMAC",
        "--from-file",
        "-",
    )
    assert code == 0 and json.loads(out)["kind"] == "GCS_HMAC"


def test_errors_are_one_line_with_reason(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(
        server, capsys, "credentials", "show", "--tenant", "acme", "--id", "cred_nope"
    )
    assert code == 3  # NOT_FOUND's exit code (was 1 before exit codes were documented)
    assert "NOT_FOUND" in err and "CREDENTIAL_NOT_FOUND" in err
    assert len(err.strip().splitlines()) == 1


def test_serve_bootstraps_a_private_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "BUCKETVAULT_DATA_DIR": str(data), "BUCKETVAULT_LISTEN": "127.0.0.1:0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bucketvault.cli.main", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # The service's own log lines (JSON) interleave with what serve prints for people.
        lines: list[str] = []
        while len(lines) < 3:
            line = proc.stdout.readline()
            assert line, "serve exited early"
            if not line.startswith("{"):
                lines.append(line)
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        assert "listening on 127.0.0.1:" in lines[0]
        assert "admin token in" in lines[1]
        assert "credentials list" in lines[2]
        address = lines[0].rsplit(" ", 1)[1].strip()
        for name in ("admin.token", "kek.key", "policy.json", "bucketvault.sqlite"):
            mode = stat.S_IMODE(os.stat(data / name).st_mode)
            assert mode & 0o077 == 0, name
        token = (data / "admin.token").read_text().strip()
        assert token not in (data / "policy.json").read_text()
        with BucketVaultClient(address, token) as c:
            assert c.registration_key().key_id.startswith("rk_")
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_audit_verify_fails_the_shell_on_a_tampered_chain(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    server.client().list_credentials("acme")  # a few audit records
    server.client().list_mounts("acme")
    code, out, _ = _cli(server, capsys, "--json", "audit", "verify")
    assert code == 0
    assert json.loads(out)["ok"] is True
    with sqlite3.connect(server.data_dir / "bucketvault.sqlite") as db:
        db.execute("UPDATE audit SET resource = 'forged' WHERE seq = 1")
    code, out, _ = _cli(server, capsys, "--json", "audit", "verify")
    verdict = json.loads(out)
    assert code == 1
    assert verdict["ok"] is False and verdict["first_bad_record"]
    code, out, _ = _cli(server, capsys, "audit", "verify")
    assert code == 1 and "ok: False" in out


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "ca")


@pytest.fixture
def mtls_server(tmp_path: Path, ca: LocalCA) -> Iterator[RunningServer]:
    with start_server(
        tmp_path,
        principals=PRINCIPALS,
        cert_principals=[("web", "web.acme.internal", ["auditor"], ["acme"])],
        providers=offline_providers(),
        tls=ca.server_tls(mtls=True),
    ) as srv:
        yield srv


def test_serve_refuses_plaintext_on_a_public_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BUCKETVAULT_ALLOW_PLAINTEXT", "BUCKETVAULT_TLS_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    # serve configures the root logger on this test's captured stderr: put it back after,
    # or later tests' log lines go to a closed stream.
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        code = main(["serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path / "d")])
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert code == 1
    assert "INVALID_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_cli_health_and_commands_over_tls(
    mtls_server: RunningServer, ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = ca.issue("web", dns=["web.acme.internal"])
    tls = [
        "--address",
        mtls_server.address,
        "--tls-ca",
        str(ca.ca_file),
        "--tls-cert",
        str(cert.cert),
        "--tls-key",
        str(cert.key),
    ]
    assert main([*tls, "health"]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    # No token: the certificate names the caller.
    assert main([*tls, "--json", "credentials", "list", "--tenant", "acme"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    audited = mtls_server.client().query_audit("acme", action="vault.list_credentials")
    assert [r.principal for r in audited] == ["web"]
    # Without a client certificate the handshake fails.
    assert main(["--address", mtls_server.address, "--tls-ca", str(ca.ca_file), "health"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_serve_serves_tls_from_the_environment(tmp_path: Path, ca: LocalCA) -> None:
    tls = ca.server_tls()
    with start_server_process(tmp_path, env=tls.env(), workers=2) as srv:
        assert served_certificate(srv.address, ca.ca_file).serial_number == (
            x509.load_pem_x509_certificate(tls.server.cert.read_bytes()).serial_number
        )
        with BucketVaultClient(srv.address, srv.admin_token, tls_ca=ca.ca_file) as c:
            assert c.registration_key().key_id.startswith("rk_")
