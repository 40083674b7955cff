"""Link key rotation through the keys CLI and restarts of the real server: a link made
before a rotation still opens after it, and answers 404 once its key is retired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from aws.aws_support import Peer, s3_bucket, s3_key_mount

from bucketvault.cli.main import main
from bucketvault.testing.server import start_server

pytestmark = pytest.mark.moto

TENANT = "acme"
BUCKET = "links-rot"


def _keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path, *a: str
) -> tuple[int, str]:
    for name in ("BUCKETVAULT_KEK", "BUCKETVAULT_KEK_PREVIOUS", "BUCKETVAULT_STORE"):
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    code = main(["--json", "keys", *a, "--data-dir", str(data_dir)])
    return code, capsys.readouterr().out


def test_a_rotated_link_key_keeps_old_links_until_it_is_retired(
    tmp_path: Path,
    moto: Peer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3_bucket(moto.url, BUCKET, {"img/a.txt": b"rotated"})
    data_dir = tmp_path / "data"
    env = {
        "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_REGION": "us-east-1",
    }
    with start_server(tmp_path, env=env, data_dir=data_dir) as srv:
        c = srv.client()
        mount_id, _ = s3_key_mount(c, moto.url, BUCKET, "AKIDROT", tenant=TENANT, name="rot")
        old = c.create_link(TENANT, mount_id, "img/a.txt")
    old_kid = old.url.split("/l/")[1].split(".")[0]

    code, out = _keys(monkeypatch, capsys, data_dir, "rotate-link-key")
    assert code == 0
    rotated = json.loads(out)
    assert rotated["previous_key_id"] == old_kid and rotated["key_id"] != old_kid
    # The newest key signs new links: it cannot be retired.
    code, _ = _keys(monkeypatch, capsys, data_dir, "retire-link-key", rotated["key_id"])
    assert code != 0

    with start_server(tmp_path, env=env, data_dir=data_dir) as srv:
        c = srv.client()
        new = c.create_link(TENANT, mount_id, "img/a.txt")
        assert new.url.split("/l/")[1].startswith(rotated["key_id"] + ".")
        path_old = "/l/" + old.url.split("/l/")[1]
        base = new.url.split("/l/")[0]
        assert requests.get(base + path_old, timeout=10).content == b"rotated"
        assert requests.get(new.url, timeout=10).content == b"rotated"

    code, _ = _keys(monkeypatch, capsys, data_dir, "retire-link-key", old_kid)
    assert code == 0
    with start_server(tmp_path, env=env, data_dir=data_dir) as srv:
        base = srv.client().create_link(TENANT, mount_id, "img/a.txt").url.split("/l/")[0]
        gone = requests.get(base + path_old, timeout=10, allow_redirects=False)
        assert gone.status_code == 404 and gone.text == "not found\n"
        assert requests.get(base + "/l/" + new.url.split("/l/")[1], timeout=10).content == (
            b"rotated"
        )
