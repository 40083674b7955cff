"""The CLI as people and scripts run it: `bucketvault ...` in a child process against a real
server (README, "The CLI"): names for ids, global flags anywhere, JSON types, pages,
batches, durations, exit codes and a closed pipe."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from core.conftest import PRINCIPALS
from core.secrets_fixtures import sample

import bucketvault
from bucketvault.cli.main import HELP, commands, parser
from bucketvault.models import Credential, ListEntry, ListPage, ListRequest, Mount
from bucketvault.providers.base import CloudProvider, CredentialHandle
from bucketvault.providers.kinds import ParsedSecret
from bucketvault.testing.fakes import (
    LocalHandle,
    LocalTrustingProvider,
    OfflineProvider,
    offline_providers,
)
from bucketvault.testing.server import RunningServer, start_server

KEYS = tuple(f"k/{i:04d}.jpg" for i in range(2500))
SRC = str(Path(bucketvault.__file__).resolve().parents[1])


@dataclass(frozen=True)
class PagedHandle(LocalHandle):
    """Lists in pages of the asked size; the token is the offset of the next page."""

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        keys = [
            mount.prefix + k for k in self.keys if (mount.prefix + k).startswith(request.prefix)
        ]
        start = int(request.page_token or 0)
        while True:
            chunk = keys[start : start + request.page_size]
            start += request.page_size
            token = str(start) if start < len(keys) else ""
            yield ListPage(tuple(ListEntry(k, 1, "etag", None) for k in chunk), (), token)
            if not token:
                return


class PagedProvider(LocalTrustingProvider):
    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        return PagedHandle(credential.credential_id, self._keys)


def _providers() -> list[CloudProvider]:
    out: list[CloudProvider] = []
    for o in offline_providers():
        assert isinstance(o, OfflineProvider)
        out.append(PagedProvider(o.name, o.kinds, o.max_url_seconds, KEYS))
    return out


@dataclass
class World:
    srv: RunningServer
    token_file: Path
    mount_id: str
    cred_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cli")
    with start_server(tmp, principals=PRINCIPALS, providers=_providers()) as srv:
        c = srv.client()
        cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name="main")
        for _ in range(2):
            c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name="twin")
        mount = c.create_mount("acme", name="photos", bucket="b", credential_id=cred.credential_id)
        yield World(srv, srv.data_dir / "admin.token", mount.mount_id, cred.credential_id)


def run(
    w: World | None, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`bucketvault args...`; the server and token from the environment (BUCKETVAULT_*)."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("BUCKETVAULT_")}
    child.update({"PYTHONPATH": SRC, "NO_COLOR": "1"})
    if w is not None:
        child.update(
            {"BUCKETVAULT_ADDRESS": w.srv.address, "BUCKETVAULT_TOKEN_FILE": str(w.token_file)}
        )
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bucketvault.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child,
        timeout=60,
        check=False,
    )


def test_names_resolve_to_ids(world: World) -> None:
    by_name = run(world, "mounts", "show", "--tenant", "acme", "--id", "photos", "--json")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout)["mount_id"] == world.mount_id
    signed = run(world, "sign", "--tenant", "acme", "--mount", "photos", "k/0001.jpg")
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith("https://") and "k/0001.jpg" in signed.stdout
    cred = run(world, "--json", "credentials", "show", "--tenant", "acme", "--id", "main")
    assert json.loads(cred.stdout)["credential_id"] == world.cred_id
    # Two credentials called "twin": which one is not guessed.
    twin = run(world, "credentials", "show", "--tenant", "acme", "--id", "twin")
    assert twin.returncode == 3 and twin.stdout == ""
    assert len(twin.stderr.splitlines()) == 1 and "2 credentials named 'twin'" in twin.stderr
    missing = run(world, "sign", "--tenant", "acme", "--mount", "nope", "a.jpg")
    assert missing.returncode == 3
    assert missing.stderr.strip() == "bucketvault: no mount named 'nope' in tenant 'acme'"


def test_global_flags_after_the_subcommand(world: World) -> None:
    r = run(
        None,
        "credentials",
        "list",
        "--tenant",
        "acme",
        "--address",
        world.srv.address,
        "--json",
        "--token-file",
        str(world.token_file),
    )
    assert r.returncode == 0, r.stderr
    assert sorted(c["display_name"] for c in json.loads(r.stdout)) == ["main", "twin", "twin"]
    nd = run(world, "mounts", "list", "--tenant", "acme", "--output", "ndjson")
    assert [json.loads(line)["name"] for line in nd.stdout.splitlines()] == ["photos"]


def test_json_has_numbers_and_nested_objects(world: World) -> None:
    mount = json.loads(
        run(world, "--json", "mounts", "show", "--tenant", "acme", "--id", "photos").stdout
    )
    assert mount["version"] == 1 and isinstance(mount["version"], int)
    policy = json.loads(run(world, "trust-policy", "--tenant", "acme", "--json").stdout)
    assert isinstance(policy["policy_json"], dict)
    verdict = json.loads(run(world, "audit", "verify", "--json").stdout)
    assert isinstance(verdict["records_checked"], int) and verdict["records_checked"] > 0


def test_durations(world: World) -> None:
    r = run(
        world, "sign", "--tenant", "acme", "--mount", "photos", "--ttl", "17m", "a.jpg", "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["expires_at"]
    # The service asked for 17 minutes (the URL's own expiry may be rounded down to a
    # cache-stable window, so the audit record says what was asked).
    signs = world.srv.client().query_audit("acme", action="signer.sign")
    assert 17 * 60 in [rec.requested_ttl_seconds for rec in signs]
    created = run(
        world,
        "mounts",
        "create",
        "--tenant",
        "acme",
        "--name",
        "six-hours",
        "--bucket",
        "b",
        "--credential",
        "main",
        "--max-ttl",
        "6h",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["policy"]["max_ttl_seconds"] == 6 * 3600
    bad = run(world, "sign", "--tenant", "acme", "--mount", "photos", "--ttl", "15x", "a.jpg")
    assert bad.returncode == 2 and "invalid duration '15x'" in bad.stderr


def test_ls_pages_and_all(world: World) -> None:
    first = run(world, "ls", "--tenant", "acme", "--mount", "photos", "--json")
    page = json.loads(first.stdout)
    # Page tokens are the service's own, opaque and bound to the listing (not the cloud's).
    token = page["next_page_token"]
    assert len(page["entries"]) == 1000 and token
    assert isinstance(page["entries"][0]["size"], int)
    second = run(
        world, "ls", "--tenant", "acme", "--mount", "photos", "--page-token", token, "--json"
    )
    page2 = json.loads(second.stdout)
    assert len(page2["entries"]) == 1000 and page2["next_page_token"] not in ("", token)
    rest = run(
        world,
        "ls",
        "--tenant",
        "acme",
        "--mount",
        "photos",
        "--page-token",
        page2["next_page_token"],
    )
    assert len(rest.stdout.splitlines()) == 500 and "--page-token" not in rest.stderr
    table = run(world, "ls", "--tenant", "acme", "--mount", "photos")
    assert f"resume with --page-token {token}" in table.stderr
    everything = run(world, "ls", "--tenant", "acme", "--mount", "photos", "--all", "--json")
    listing = json.loads(everything.stdout)
    assert [e["key"] for e in listing["entries"]] == list(KEYS)
    assert listing["next_page_token"] == "" and everything.stderr == ""  # no progress: piped


def test_sign_batch_from_stdin(world: World) -> None:
    keys = "\n".join(KEYS) + "\n\n"
    urls = run(
        world,
        "sign",
        "--tenant",
        "acme",
        "--mount",
        "photos",
        "--batch",
        "-",
        "--output",
        "url",
        stdin=keys,
    )
    assert urls.returncode == 0, urls.stderr
    # 2500 keys signed: in calls of at most 1000, as the service refuses more in one.
    lines = urls.stdout.splitlines()
    assert len(lines) == len(KEYS) and all(k in u for k, u in zip(KEYS, lines, strict=True))
    assert urls.stderr == ""
    as_json = run(
        world,
        "--json",
        "sign",
        "--tenant",
        "acme",
        "--mount",
        "photos",
        "--batch",
        "-",
        stdin="a.jpg\nb.jpg\n",
    )
    assert [s["key"] for s in json.loads(as_json.stdout)] == ["a.jpg", "b.jpg"]


def test_a_closed_pipe_is_a_clean_exit(world: World) -> None:
    cli = shlex.join([sys.executable, "-m", "bucketvault.cli.main"])
    line = f"{cli} ls --tenant acme --mount photos --all --sign-ttl 5m | head -1"
    child = {
        **os.environ,
        "PYTHONPATH": SRC,
        "BUCKETVAULT_ADDRESS": world.srv.address,
        "BUCKETVAULT_TOKEN_FILE": str(world.token_file),
    }
    r = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line}"],
        capture_output=True,
        text=True,
        env=child,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and r.stderr == ""
    assert len(r.stdout.splitlines()) == 1 and "k/0000.jpg" in r.stdout


def test_exit_codes(world: World, tmp_path: Path) -> None:
    nothing = run(world, "mounts", "show", "--tenant", "acme", "--id", "mnt_nope")
    assert nothing.returncode == 3 and "MOUNT_NOT_FOUND" in nothing.stderr
    viewer = tmp_path / "viewer.token"
    viewer.write_text(world.srv.tokens["viewer"])
    denied = run(world, "credentials", "list", "--tenant", "globex", "--token-file", str(viewer))
    assert denied.returncode == 4 and "PERMISSION_DENIED" in denied.stderr
    assert len(denied.stderr.splitlines()) == 1 and "Traceback" not in denied.stderr
    dead = run(world, "--address", "127.0.0.1:1", "credentials", "list", "--tenant", "acme")
    assert dead.returncode == 5 and "UNAVAILABLE" in dead.stderr
    assert len(dead.stderr.splitlines()) == 1
    usage = run(world, "sign", "--tenant", "acme", "--mount", "photos")
    assert usage.returncode == 2 and "sign needs one key" in usage.stderr


def test_every_command_has_a_description_and_an_example() -> None:
    p = parser()
    paths = [path for path, _ in commands(p)]
    assert "mounts create" in paths and "keys rotate-kek" in paths and "link revoke" in paths
    for path, sub in commands(p):
        assert path in HELP, path
        assert sub.description and "\n" not in sub.description.strip(), path
        assert (
            sub.epilog and sub.epilog.startswith("example:\n  ") and "bucketvault " in sub.epilog
        ), path
    help_text = run(None, "sign", "--help").stdout
    assert "example:\n  bucketvault sign" in help_text and "--address" in help_text
    assert run(None, "--version").stdout.startswith("bucketvault ")


def test_serve_on_a_busy_port_is_one_line_and_exit_5(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(None, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"))
    # serve's stderr also carries its JSON log lines (and grpc's own line on the bind).
    assert r.returncode == 5 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"bucketvault: cannot listen on 127.0.0.1:{port}: the port is in use or the address "
        "is not this host's"
    )


def _on_a_terminal(w: World, *args: str, env: dict[str, str]) -> str:
    """Run with stderr on a pseudo-terminal (stdout still a pipe); what stderr showed."""
    import pty

    leader, follower = pty.openpty()
    child = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "BUCKETVAULT_TOKEN")}
    child.update({"PYTHONPATH": SRC, "BUCKETVAULT_TOKEN_FILE": str(w.token_file), **env})
    try:
        subprocess.run(
            [sys.executable, "-m", "bucketvault.cli.main", "--address", w.srv.address, *args],
            input=b"a.jpg\nb.jpg\n",
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=child,
            timeout=60,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    return shown.decode()


def test_progress_and_colour_only_on_a_terminal(world: World) -> None:
    batch = ("sign", "--tenant", "acme", "--mount", "photos", "--batch", "-")
    assert "signed 2" in _on_a_terminal(world, *batch, env={"NO_COLOR": ""})
    missing = ("mounts", "show", "--tenant", "acme", "--id", "mnt_nope")
    assert "\033[31mbucketvault:" in _on_a_terminal(world, *missing, env={})
    plain = _on_a_terminal(world, *missing, env={"NO_COLOR": "1"})
    assert "\033[" not in plain and "MOUNT_NOT_FOUND" in plain
