"""The real server on each store backend: state and the audit chain survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bucketvault.testing.server import start_server


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_server_state_survives_restart_on_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # A configured service principal keeps the AWS provider from asking STS who it is.
    env = {"BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": "arn:aws:iam::111122223333:role/bucketvault"}
    if backend == "postgres":
        env["BUCKETVAULT_STORE"] = request.getfixturevalue("embedded_pg").create_database()
    data_dir = tmp_path / "data"

    with start_server(tmp_path, env=env, data_dir=data_dir) as srv:
        c = srv.client()
        first = c.trust_policy("acme").external_id
        assert first
        assert c.trust_policy("acme").external_id == first
        assert c.trust_policy("globex").external_id != first

    with start_server(tmp_path, env=env, data_dir=data_dir) as srv:
        c = srv.client()
        assert c.trust_policy("acme").external_id == first
        verdict = c.verify_audit()
        assert verdict.ok, verdict.detail
        records = list(c.query_audit("acme"))
        assert records, "trust policy reads are audited"
        assert all(r.tenant == "acme" for r in records)
        assert verdict.records_checked >= len(records)
