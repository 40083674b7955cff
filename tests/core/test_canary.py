"""The canary test: a secret registered with a unique marker never appears in any
response, error, log line, audit record (store or SIEM file) or the database files.

It runs the real cloud providers (STS on moto) and drives success and failure paths.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
from core.conftest import aws_env, free_port
from core.secrets_fixtures import KINDS, sample

from bucketvault import errors
from bucketvault.client import BucketVaultClient, RetryPolicy
from bucketvault.testing.server import start_server


def test_canary_never_leaks(
    tmp_path: Path,
    moto_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    canary = "CANARY" + secrets.token_hex(8)
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: fast, offline failures
    jsonl = tmp_path / "audit.jsonl"
    env = {
        **aws_env(moto_url),
        "BUCKETVAULT_AUDIT_JSONL": str(jsonl),
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": dead.replace("http:", "https:"),
        "BUCKETVAULT_AZURE_RETRY_TOTAL": "0",
    }
    seen: list[str] = []
    with start_server(tmp_path, env=env) as srv:
        # One attempt per call: the count of audit records below is per call, and the SDK
        # would otherwise retry the calls refused UNAVAILABLE (dead endpoints).
        c = BucketVaultClient(srv.address, srv.admin_token, retry=RetryPolicy(max_attempts=1))
        registered = {}
        for kind in KINDS:
            doc = sample(kind, canary)
            if kind.startswith("AZURE"):
                doc["account_url"] = dead + "/acct"
            try:
                cred = c.register_credential("acme", kind, doc, display_name=kind)
                registered[kind] = cred.credential_id
                seen.append(str(cred))
            except errors.BucketVaultError as exc:
                seen += [str(exc), repr(exc), exc.message, str(exc.metadata)]
        assert {"AWS_ROLE", "S3_ACCESS_KEY", "GCS_SERVICE_ACCOUNT", "GCS_HMAC", "AZURE_SAS"} <= set(
            registered
        )
        # Bad input that carries the canary: the error must not quote it.
        for bad in (
            {"access_id": "GOOG1X", "secret": 5, "x": canary},
            {"access_id": canary * 20, "secret": canary},
        ):
            with pytest.raises(errors.InvalidArgument) as exc_info:
                c.register_credential("acme", "GCS_HMAC", bad)
            seen += [str(exc_info.value), repr(exc_info.value)]
        sign_calls = 0
        for kind, cred_id in registered.items():
            mount = c.create_mount(
                "acme",
                name=f"m-{kind.lower().replace('_', '-')}",
                bucket="bucket",
                prefix="img/",
                credential_id=cred_id,
                allowed_methods=("GET", "HEAD", "PUT"),
                endpoint=dead if kind in ("S3_ACCESS_KEY",) else "",
                # The canary SAS lasts long: accept it, so its URLs are signed, not refused.
                allow_credential_lifetime=kind == "AZURE_SAS",
            )
            seen.append(str(c.get_credential("acme", cred_id)))
            for call in (
                lambda m=mount: c.sign_url("acme", m.mount_id, "img/a b+c.jpg", ttl_seconds=600),
                lambda m=mount: c.sign_url(
                    "acme", m.mount_id, "img/up.jpg", method="PUT", content_type="image/jpeg"
                ),
                lambda m=mount: c.sign_urls(
                    "acme", m.mount_id, [f"img/{i}.jpg" for i in range(50)]
                ),
            ):
                try:
                    seen.append(str(call()))
                    sign_calls += 1
                except errors.BucketVaultError as exc:
                    seen += [str(exc), repr(exc)]
            for call in (
                lambda m=mount: list(c.list_prefix("acme", m.mount_id, page_size=10)),
                lambda m=mount: c.check_mount("acme", m.mount_id),
            ):
                try:
                    seen.append(str(call()))
                except errors.BucketVaultError as exc:
                    seen += [str(exc), repr(exc)]
        assert sign_calls >= 10
        seen += [str(x) for x in c.list_credentials("acme")]
        c.revoke_credential("acme", registered["GCS_HMAC"], "canary test")
        records = list(c.query_audit("acme"))
        seen += [str(r) for r in records]
        # One record per sign call, however many keys it carried, refused calls included.
        signs = [r for r in records if r.action == "signer.sign"]
        assert len(signs) == 3 * len(registered)
        assert len([r for r in signs if r.outcome == "ok"]) == sign_calls
        assert c.verify_audit().ok
        data_files = list(srv.data_dir.iterdir())
    out, err = capfd.readouterr()
    haystacks = {
        "responses and errors": "\n".join(seen),
        "logs": caplog.text,
        "stdout": out,
        "stderr": err,
        "siem": jsonl.read_text(),
    }
    assert "signer.sign" in haystacks["siem"]
    for where, text in haystacks.items():
        assert canary not in text, where
    for path in data_files:
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path.name
