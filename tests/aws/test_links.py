"""Stable links through the real server: CreateLink over gRPC, opened over the HTTP
listener, redirected to moto (and, in test_browser_*, loaded by headless Chromium)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from aws.aws_support import Peer, s3_bucket, s3_key_doc, s3_key_mount

from bucketvault.cli.main import main
from bucketvault.errors import BucketVaultError
from bucketvault.testing.server import RunningServer, start_server

pytestmark = pytest.mark.moto

TENANT = "acme"
BUCKET = "links"
ALLOWED_ORIGIN = "http://127.0.0.1:9"
LINKS_ENV = {
    "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
    "BUCKETVAULT_HTTP_CORS_ORIGINS": ALLOWED_ORIGIN,
    "BUCKETVAULT_HTTP_URL_TTL_SECONDS": "300",
    "BUCKETVAULT_HTTP_CACHE_MARGIN_SECONDS": "30",
}


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size (grey), without an image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


IMAGE = png(7, 3)


@pytest.fixture(scope="module")
def world(moto: Peer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    objects = {"img/a.png": IMAGE, "img/sub/b.txt": b"bee", "other/c.txt": b"sea"}
    s3_bucket(moto.url, BUCKET, objects)
    env = {**LINKS_ENV, "AWS_ENDPOINT_URL_S3": moto.url, "AWS_REGION": "us-east-1"}
    with start_server(tmp_path_factory.mktemp("links"), env=env) as srv:
        yield srv


def _mount(srv: RunningServer, moto: Peer, access_key: str = "AKIDONE") -> tuple[str, str]:
    return s3_key_mount(srv.client(), moto.url, BUCKET, access_key, max_ttl_seconds=3600)


def _get(url: str, **kw: Any) -> requests.Response:
    return requests.get(url, timeout=10, **kw)


def _assert_404(response: requests.Response) -> None:
    assert response.status_code == 404
    assert response.text == "not found\n"
    assert "Location" not in response.headers


def test_a_link_redirects_survives_rebind_and_dies_with_the_credential(
    world: RunningServer, moto: Peer
) -> None:
    c = world.client()
    mount_id, _ = _mount(world, moto, "AKIDFIRST")
    link = c.create_link(TENANT, mount_id, "img/a.png")
    assert link.url.startswith("http://127.0.0.1:") and "/l/" in link.url
    assert link.url.endswith("/img/a.png") and not link.HasField("expires_at")
    first = _get(link.url, allow_redirects=False)
    assert first.status_code == 302
    assert "AKIDFIRST" in first.headers["Location"]
    match = re.fullmatch(r"private, max-age=(\d+)", first.headers["Cache-Control"])
    assert match and 240 <= int(match[1]) <= 270  # 300 s URLs minus the 30 s margin
    assert first.content == b""
    assert _get(link.url).content == IMAGE
    head = requests.head(link.url, timeout=10)
    assert head.status_code == 302 and "X-Amz-Signature" in head.headers["Location"]

    second = c.register_credential(TENANT, "S3_ACCESS_KEY", s3_key_doc(moto.url, "AKIDSECOND"))
    version = c.get_mount(TENANT, mount_id).version
    c.rebind_mount(TENANT, mount_id, second.credential_id, version)
    after = _get(link.url, allow_redirects=False)
    assert after.status_code == 302 and "AKIDSECOND" in after.headers["Location"]
    assert _get(link.url).content == IMAGE

    c.revoke_credential(TENANT, second.credential_id)
    _assert_404(_get(link.url))


def test_forged_altered_and_outside_keys_answer_404(world: RunningServer, moto: Peer) -> None:
    c = world.client()
    mount_id, _ = _mount(world, moto)
    link = c.create_link(TENANT, mount_id, "img/a.png")
    base, token, key = re.fullmatch(r"(.*/l/)([^/]+)/(.*)", link.url).groups()  # type: ignore[union-attr]
    kid, body, mac = token.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    claims = base64.urlsafe_b64decode(body + "==").replace(b"img/a.png", b"img/sub/")
    widened = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    for url in (
        f"{base}{kid}.{body}.{flipped}/{key}",
        f"{base}{kid}.{widened}.{mac}/img/sub/b.txt",
        f"{base}lk_0000000000000000.{body}.{mac}/{key}",
        f"{base}garbage/{key}",
        f"{base}{token}/img/sub/b.txt",  # a key link opens its key only
        f"{base}{token}",
    ):
        _assert_404(_get(url))

    prefix = c.create_link(TENANT, mount_id, prefix="img/sub/", whole_prefix=True)
    assert prefix.url.endswith("/") and prefix.prefix == "img/sub/"
    assert _get(prefix.url + "img/sub/b.txt").content == b"bee"
    for outside in ("img/a.png", "img/sub/../a.png", "img/sub/%2e%2e/a.png", "other/c.txt"):
        _assert_404(_get(prefix.url + outside))
    # The mount's prefix bounds a prefix link too: "" means the mount's own.
    whole = c.create_link(TENANT, mount_id, whole_prefix=True)
    _assert_404(_get(whole.url + "other/c.txt"))
    with pytest.raises(BucketVaultError) as refused:
        c.create_link(TENANT, mount_id, "other/c.txt")
    assert refused.value.reason == "KEY_OUTSIDE_MOUNT"
    with pytest.raises(BucketVaultError) as put:
        c.create_link(TENANT, mount_id, "img/a.png", methods=["PUT"])
    assert put.value.reason == "INVALID_FIELD"


def test_revoke_link_expiry_batch_and_the_audit_of_each_open(
    world: RunningServer, moto: Peer
) -> None:
    c = world.client()
    mount_id, cred_id = _mount(world, moto)
    keep, drop = c.create_links(TENANT, mount_id, ["img/a.png", "img/sub/b.txt"])
    assert [keep.key, drop.key] == ["img/a.png", "img/sub/b.txt"]
    assert _get(drop.url).content == b"bee"
    c.revoke_link(TENANT, mount_id, drop.link_id, reason="test")
    _assert_404(_get(drop.url))
    assert _get(keep.url).content == IMAGE
    # Revoking a link under another mount revokes nothing.
    other_mount, _ = _mount(world, moto)
    c.revoke_link(TENANT, other_mount, keep.link_id)
    assert _get(keep.url, allow_redirects=False).status_code == 302

    short = c.create_link(TENANT, mount_id, "img/a.png", expires_in_seconds=1)
    assert short.HasField("expires_at")
    time.sleep(2.1)
    _assert_404(_get(short.url))
    bogus = keep.url.replace("/l/", "/l/x")
    _assert_404(_get(bogus))
    # A forged token names no tenant: its record is in the all-tenant log only.
    records = [r for r in c.query_audit() if r.action == "link.open"]
    mine = {
        (r.principal, r.outcome, r.reason, tuple(r.keys))
        for r in records
        if r.principal in (f"link:{keep.link_id}", f"link:{drop.link_id}", f"link:{short.link_id}")
        or r.principal == "unauthenticated"
    }
    assert (f"link:{drop.link_id}", "ok", "", ("img/sub/b.txt",)) in mine
    assert (f"link:{drop.link_id}", "error", "LINK_REVOKED", ("img/sub/b.txt",)) in mine
    assert (f"link:{keep.link_id}", "ok", "", ("img/a.png",)) in mine
    assert (f"link:{short.link_id}", "error", "LINK_EXPIRED", ("img/a.png",)) in mine
    assert ("unauthenticated", "error", "LINK_NOT_FOUND", ("img/a.png",)) in mine
    opened = next(r for r in records if r.principal == f"link:{keep.link_id}")
    assert opened.peer.startswith("http:127.0.0.1")
    assert opened.mount_id == mount_id and opened.credential_id == cred_id
    assert opened.method == "GET"
    created = [r for r in c.query_audit(TENANT) if r.action == "link.create"]
    assert any(r.detail["link_count"] == "2" for r in created)
    assert c.verify_audit().ok


def test_cors_headers_only_for_configured_origins(world: RunningServer, moto: Peer) -> None:
    c = world.client()
    mount_id, _ = _mount(world, moto)
    link = c.create_link(TENANT, mount_id, "img/a.png")
    allowed = _get(link.url, allow_redirects=False, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    other = _get(link.url, allow_redirects=False, headers={"Origin": "http://evil.example"})
    assert other.status_code == 302
    assert "Access-Control-Allow-Origin" not in other.headers
    missing = _get(link.url + "x", headers={"Origin": ALLOWED_ORIGIN})
    assert missing.status_code == 404
    assert requests.post(link.url, timeout=10).status_code == 405


def test_links_need_a_grant_on_the_mount_and_a_listener(tmp_path: Path, moto: Peer) -> None:
    with start_server(tmp_path, principals=[("op", ["operator"], [TENANT])]) as srv:
        mount_id, _ = _mount(srv, moto)
        with pytest.raises(BucketVaultError) as no_listener:
            srv.client().create_link(TENANT, mount_id, "img/a.png")
        assert no_listener.value.reason == "LINKS_NOT_CONFIGURED"
    env = {**LINKS_ENV, "BUCKETVAULT_HTTP_RATE_PER_SECOND": "1", "BUCKETVAULT_HTTP_RATE_BURST": "2"}
    with start_server(
        tmp_path / "limited", env=env, principals=[("op", ["operator"], [TENANT])]
    ) as srv:
        mount_id, _ = _mount(srv, moto)
        with pytest.raises(BucketVaultError) as denied:
            srv.client(srv.tokens["op"]).create_link(TENANT, mount_id, "img/a.png")
        assert denied.value.reason == "PERMISSION_DENIED"
        link = srv.client().create_link(TENANT, mount_id, "img/a.png")
        codes = [_get(link.url, allow_redirects=False).status_code for _ in range(4)]
        assert codes[:2] == [302, 302] and 429 in codes[2:]


def test_no_audit_record_no_redirect(world: RunningServer, moto: Peer) -> None:
    c = world.client()
    mount_id, _ = _mount(world, moto)
    link = c.create_link(TENANT, mount_id, "img/a.png")
    db = sqlite3.connect(world.data_dir / "bucketvault.sqlite")
    try:
        with db:
            db.execute(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit "
                "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
            )
        down = _get(link.url, allow_redirects=False)
        assert down.status_code == 503 and "Location" not in down.headers
        assert down.text == "unavailable\n"
    finally:
        with db:
            db.execute("DROP TRIGGER audit_down")
        db.close()
    assert _get(link.url, allow_redirects=False).status_code == 302


# -- a browser: <img src=LINK> on a page of another origin ------------------------------


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("CI=true and no chromium on PATH (apt-get install chromium)")
    return found


def test_browser_loads_an_image_link_from_another_origin(
    world: RunningServer, moto: Peer, tmp_path: Path
) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed")
    mount_id, _ = _mount(world, moto)
    link = world.client().create_link(TENANT, mount_id, "img/a.png")
    page = (
        "<!doctype html><html><body><p id=out>pending</p>"
        f"<img id=img src='{link.url}' "
        "onload=\"document.getElementById('out').textContent='width='+this.naturalWidth\" "
        "onerror=\"document.getElementById('out').textContent='error'\">"
        "</body></html>"
    )
    handler = type("Page", (_Page,), {"html": page.encode()})
    # localhost vs 127.0.0.1: another origin than the links' listener.
    server = ThreadingHTTPServer(("localhost", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = subprocess.run(
            [
                chromium,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                f"http://localhost:{server.server_address[1]}/",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "width=7" in out.stdout, (out.stdout[-2000:], out.stderr[-2000:])
    opens = [r for r in world.client().query_audit(TENANT) if r.principal == f"link:{link.link_id}"]
    assert [r.outcome for r in opens] == ["ok"]


def test_the_cli_makes_a_link_that_opens(
    world: RunningServer, moto: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bucketvault --json link create` prints the link as people read it (methods by
    their short names; GET and HEAD by default) and the link redirects to the object."""
    mount_id, _ = _mount(world, moto)
    token_file = world.data_dir / "admin.token"
    base = ["--address", world.address, "--token-file", str(token_file), "--json"]
    code = main([*base, "link", "create", "--tenant", TENANT, "--mount", mount_id, "img/a.png"])
    out, _ = capsys.readouterr()
    assert code == 0
    link = json.loads(out)
    assert link["key"] == "img/a.png" and link["methods"] == ["GET", "HEAD"]
    assert _get(link["url"]).content == IMAGE
