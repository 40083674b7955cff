"""`make demo`: the whole product on loopback, through the real CLI, in about a minute.

It starts the stand-ins with the launchers of bucketvault.testing.emulators (LocalStack for
S3 when it is installed, since it verifies SigV4; moto otherwise), runs ``bucketvault serve``
as a child process on a free port with a temporary data directory, puts one object per
cloud, then runs the CLI as a user would (each command line printed with ``$``, then its
output): register one credential per cloud, create mounts, sign URLs and fetch them, list a
prefix, rotate the S3 credential by registering a new key and rebinding, show the audit
trail and verify it. Everything it started is stopped by PID and every temporary directory
removed, on success, failure, Ctrl-C or SIGTERM alike.

Run: ``PYTHONPATH=src .venv/bin/python -m bucketvault.testing.demo``. ``--secrets-file F``
(for tests) writes the secret values the demo registered to F (a JSON list), so that a
caller can check that none of them reached the output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bucketvault.testing.emulators import (
    LOCALSTACK,
    EmulatorMissing,
    RunningEmulator,
    start_azurite,
    start_fake_gcs,
    start_localstack,
    start_moto,
)

TENANT = "acme"
# Azurite's development account and its published key (the same for every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_BUCKET = "demo-photos"
GCS_BUCKET = "demo-reports"
AZURE_CONTAINER = "demo-invoices"
# One object per cloud, sized so that a fetched byte count proves the right object came back.
OBJECTS = {
    "s3": ("photos/2026/cat.jpg", b"\xff\xd8" + b"c" * 2046),
    "gcs": ("reports/q3.csv", b"quarter,revenue\n" + b"q3,42\n" * 100),
    "azure": ("invoices/inv-0001.pdf", b"%PDF-1.7\n" + b"i" * 991),
}
# A few more S3 keys, so that `ls` shows a directory and a nested prefix.
MORE_S3 = ("photos/2026/dog.jpg", "photos/2026/raw/cat.dng", "photos/2025/old.jpg")
_LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")
EXIT_STEP_FAILED = 1
EXIT_MISSING = 2


class StepFailed(RuntimeError):
    """A demo step did not give what a user would expect; the message says which."""


@dataclass(frozen=True)
class Peers:
    """The running stand-ins the service talks to."""

    s3: RunningEmulator
    azure: RunningEmulator
    gcs: RunningEmulator


@dataclass
class Demo:
    """What the steps share: where things run and which secrets were registered."""

    work: Path
    env: dict[str, str]
    pids: list[tuple[str, int]] = field(default_factory=list)
    # Secret values registered (never printed): --secrets-file hands them to a test.
    secret_values: list[str] = field(default_factory=list, repr=False)

    def say(self, text: str) -> None:
        """A narration line, set apart from command output."""
        print(f"\n# {text}", flush=True)

    def cli(self, *args: str, expect: int = 0) -> str:
        """Run `bucketvault ARGS` as a user would and print the line and its output."""
        print(f"$ bucketvault {shlex.join(args)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "bucketvault.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out = done.stdout + done.stderr
        print(out.rstrip("\n"), flush=True)
        if done.returncode != expect:
            raise StepFailed(f"`bucketvault {args[0]}` exited {done.returncode}, not {expect}")
        return done.stdout

    def secret_file(self, name: str, document: dict[str, str], *secret_keys: str) -> Path:
        """Write a credential document (0600) for --from-file; remember its secret values."""
        path = self.work / "secrets" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(json.dumps(document))
        path.chmod(0o600)
        self.secret_values += [document[k] for k in secret_keys]
        return path

    def fetch(self, url: str, expected: bytes) -> None:
        """GET a signed URL and print what came back; fail unless it is the object."""
        got = requests.get(url, timeout=30)
        ok = got.status_code == 200 and got.content == expected
        what = "the object" if ok else f"expected {len(expected)} bytes"
        print(f"  GET -> HTTP {got.status_code}, {len(got.content)} bytes ({what})", flush=True)
        if not ok:
            raise StepFailed(f"fetching a signed URL gave HTTP {got.status_code}")


def _s3_admin(peer: RunningEmulator) -> Any:
    # The stand-in's own root account: it makes the bucket and the demo user's keys.
    return boto3.client(
        "s3",
        endpoint_url=peer.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _iam(peer: RunningEmulator) -> Any:
    return boto3.client(
        "iam",
        endpoint_url=peer.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _seed(peers: Peers) -> None:
    """Buckets and objects, put with each stand-in's own API (not through bucketvault)."""
    s3 = _s3_admin(peers.s3)
    s3.create_bucket(Bucket=S3_BUCKET)
    key, body = OBJECTS["s3"]
    s3.put_object(Bucket=S3_BUCKET, Key=key, Body=body)
    for extra in MORE_S3:
        s3.put_object(Bucket=S3_BUCKET, Key=extra, Body=b"x" * 100)
    _iam(peers.s3).create_user(UserName="demo-signer")

    with requests.Session() as s:
        s.post(
            f"{peers.gcs.url}/storage/v1/b",
            params={"project": "demo"},
            json={"name": GCS_BUCKET},
            timeout=10,
        ).raise_for_status()
        key, body = OBJECTS["gcs"]
        s.post(
            f"{peers.gcs.url}/upload/storage/v1/b/{GCS_BUCKET}/o",
            params={"uploadType": "media", "name": key},
            data=body,
            headers={"Content-Type": "text/csv"},
            timeout=10,
        ).raise_for_status()

    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415 (slow import, one use)

    service = BlobServiceClient(
        f"{peers.azure.url}/{AZURITE_ACCOUNT}",
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    )
    container = service.create_container(AZURE_CONTAINER)
    key, body = OBJECTS["azure"]
    container.upload_blob(key, body)


def _access_key(peer: RunningEmulator) -> tuple[str, str]:
    """A fresh access key of the demo's IAM user (LocalStack checks its secret)."""
    made = _iam(peer).create_access_key(UserName="demo-signer")["AccessKey"]
    return str(made["AccessKeyId"]), str(made["SecretAccessKey"])


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@contextmanager
def _serve(demo: Demo) -> Iterator[str]:
    """`bucketvault serve` as a child process; its address once it listens. Stopped by PID."""
    log = (demo.work / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bucketvault.cli.main", "serve"],
        env={**demo.env, "BUCKETVAULT_LISTEN": "127.0.0.1:0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not address:
            line = proc.stdout.readline()
            if not line:
                break
            log.write(line)
            match = _LISTENING.search(line)
            address = match.group(1) if match else ""
        if not address:
            raise StepFailed(f"bucketvault serve did not start (see {demo.work / 'serve.log'})")
        # The service logs JSON lines; keep draining them into the log so its pipe never fills.
        threading.Thread(target=lambda: log.writelines(proc.stdout or ()), daemon=True).start()
        demo.pids.append(("bucketvault serve", proc.pid))
        print(f"  bucketvault serve (pid {proc.pid}) listening on {address}", flush=True)
        yield address
    finally:
        # SIGTERM: the service drains, flushes and checkpoints its audit log, then exits.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _start_peers(stack: ExitStack, demo: Demo) -> Peers:
    demo.say("starting local stand-ins for S3, Azure Blob and GCS")
    try:
        LOCALSTACK.require()
        s3 = stack.enter_context(start_localstack(workdir=demo.work / "localstack"))
    except EmulatorMissing as exc:
        print(f"  ({exc}; using moto, which does not verify signatures)", flush=True)
        s3 = stack.enter_context(start_moto(workdir=demo.work / "moto"))
    azure = stack.enter_context(start_azurite(workdir=demo.work / "azurite"))
    gcs = stack.enter_context(start_fake_gcs(workdir=demo.work / "fake-gcs"))
    for peer in (s3, azure, gcs):
        demo.pids.append((peer.name, peer.pid))
        print(f"  {peer.name} (pid {peer.pid}) on {peer.url}", flush=True)
    return Peers(s3, azure, gcs)


def _signed_url(output: str) -> str:
    url = output.strip().splitlines()[-1].strip()
    if not url.startswith("http"):
        raise StepFailed(f"sign printed no URL: {output!r}")
    return url


def run(demo: Demo, stack: ExitStack) -> None:
    """Every step, in the order a new user meets them."""
    peers = _start_peers(stack, demo)
    _seed(peers)
    demo.env.update(
        {
            # The stand-ins speak plain http on loopback; production refuses that.
            "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": "true",
            "BUCKETVAULT_DATA_DIR": str(demo.work / "data"),
            # The service's own AWS identity and endpoints (listing goes through them).
            "AWS_ENDPOINT_URL": peers.s3.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }
    )
    demo.say("starting the service: a fresh data dir, an admin token written into it")
    address = stack.enter_context(_serve(demo))
    token_file = demo.work / "data" / "admin.token"
    demo.env.update({"BUCKETVAULT_ADDRESS": address, "BUCKETVAULT_TOKEN_FILE": str(token_file)})
    print(f"$ export BUCKETVAULT_ADDRESS={address} BUCKETVAULT_TOKEN_FILE={token_file}")
    demo.cli("health")

    demo.say("register one credential per cloud (the CLI seals each before it leaves)")
    key_id, secret = _access_key(peers.s3)
    s3_doc = {
        "access_key_id": key_id,
        "secret_access_key": secret,
        "endpoint_url": peers.s3.url,
        "region": "us-east-1",
    }
    s3_file = demo.secret_file("s3-key-1.json", s3_doc, "secret_access_key")
    pem = _rsa_pem()
    gcs_doc = {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": secrets.token_hex(8),
        "private_key": pem,
        "client_email": "signer@demo.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    gcs_file = demo.secret_file("gcs-sa.json", gcs_doc, "private_key")
    az_doc = {
        "account_url": f"{peers.azure.url}/{AZURITE_ACCOUNT}",
        "account_name": AZURITE_ACCOUNT,
        "account_key": AZURITE_KEY,
    }
    az_file = demo.secret_file("azure-key.json", az_doc, "account_key")
    for kind, path, name in (
        ("S3_ACCESS_KEY", s3_file, "s3-key-1"),
        ("GCS_SERVICE_ACCOUNT", gcs_file, "gcs-sa"),
        ("AZURE_SHARED_KEY", az_file, "azure-key"),
    ):
        reg = ("credentials", "register", "--tenant", TENANT, "--kind", kind)
        demo.cli(*reg, "--from-file", str(path), "--name", name)
    demo.cli("credentials", "list", "--tenant", TENANT)

    demo.say("one mount per bucket: which credential signs, under which prefix, how long")
    common = ("mounts", "create", "--tenant", TENANT, "--max-ttl", "1h", "--methods", "GET,HEAD")
    demo.cli(
        *common,
        "--name",
        "photos",
        "--bucket",
        S3_BUCKET,
        "--credential",
        "s3-key-1",
        "--prefix",
        "photos/",
        "--region",
        "us-east-1",
    )
    demo.cli(
        *common,
        "--name",
        "reports",
        "--bucket",
        GCS_BUCKET,
        "--credential",
        "gcs-sa",
        "--prefix",
        "reports/",
        "--endpoint",
        peers.gcs.url,
    )
    demo.cli(
        *common,
        "--name",
        "invoices",
        "--bucket",
        AZURE_CONTAINER,
        "--credential",
        "azure-key",
        "--prefix",
        "invoices/",
    )
    demo.cli("mounts", "list", "--tenant", TENANT)

    demo.say("sign a URL per cloud and fetch it (the caller never sees a credential)")
    for mount, cloud in (("photos", "s3"), ("reports", "gcs"), ("invoices", "azure")):
        key, body = OBJECTS[cloud]
        url = _signed_url(
            demo.cli("sign", "--tenant", TENANT, "--mount", mount, "--ttl", "10m", key)
        )
        demo.fetch(url, body)

    demo.say("list a prefix: one level, with sizes")
    listed = demo.cli(
        "ls",
        "--tenant",
        TENANT,
        "--mount",
        "photos",
        "--prefix",
        "photos/2026/",
        "--delimiter",
        "/",
    )
    if "photos/2026/raw/" not in listed or OBJECTS["s3"][0] not in listed:
        raise StepFailed("ls did not show the prefix's keys and sub-prefix")

    demo.say("rotate the S3 key: register the new one, rebind the mount, revoke the old one")
    key_id2, secret2 = _access_key(peers.s3)
    s3_file2 = demo.secret_file(
        "s3-key-2.json",
        {**s3_doc, "access_key_id": key_id2, "secret_access_key": secret2},
        "secret_access_key",
    )
    demo.cli(
        "credentials",
        "register",
        "--tenant",
        TENANT,
        "--kind",
        "S3_ACCESS_KEY",
        "--from-file",
        str(s3_file2),
        "--name",
        "s3-key-2",
    )
    shown = json.loads(demo.cli("--json", "mounts", "show", "--tenant", TENANT, "--id", "photos"))
    demo.cli(
        "mounts",
        "rebind",
        "--tenant",
        TENANT,
        "--id",
        "photos",
        "--credential",
        "s3-key-2",
        "--expected-version",
        str(shown["version"]),
    )
    demo.cli("credentials", "revoke", "--tenant", TENANT, "--id", "s3-key-1", "--reason", "rotated")
    key, body = OBJECTS["s3"]
    url = _signed_url(demo.cli("sign", "--tenant", TENANT, "--mount", "photos", key))
    if key_id2 not in url:
        raise StepFailed("the rebound mount still signs with the old key")
    print(f"  (signed by the new key {key_id2})", flush=True)
    demo.fetch(url, body)
    demo.say("the audit trail: every call above, who made it, and how it ended")
    demo.cli("audit", "query", "--tenant", TENANT, "--limit", "50")
    demo.cli("audit", "verify", "--full")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so every finally block runs.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when every step gave what it should."""
    p = argparse.ArgumentParser(prog="bucketvault-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--secrets-file", help="write the registered secret values here (tests)")
    args = p.parse_args(argv)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    work = Path(tempfile.mkdtemp(prefix="bucketvault-demo-"))
    # The CLI and the service run from this checkout's src, whatever the caller's PYTHONPATH.
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    for name in ("BUCKETVAULT_TOKEN", "BUCKETVAULT_ADDRESS", "BUCKETVAULT_TOKEN_FILE"):
        env.pop(name, None)
    demo = Demo(work, env)
    code = 0
    try:
        with ExitStack() as stack:
            try:
                run(demo, stack)
            finally:
                if args.secrets_file:
                    Path(args.secrets_file).write_text(json.dumps(demo.secret_values))
                demo.say("cleaning up: stopping every process by PID, removing temp dirs")
    except EmulatorMissing as exc:
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        code = EXIT_MISSING
    except (StepFailed, requests.RequestException, subprocess.SubprocessError) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr, flush=True)
        code = EXIT_STEP_FAILED
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr, flush=True)
        code = 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stopped = ", ".join(f"{name} {pid}" for name, pid in demo.pids)
    print(f"  stopped: {stopped or 'nothing was running'}")
    print(f"  removed {work}")
    verdict = "ok" if code == 0 else f"failed (exit {code})"
    print(f"\ndemo {verdict} in {time.monotonic() - started:.1f} s", flush=True)
    return code


__all__ = ["Demo", "StepFailed", "main", "run"]

if __name__ == "__main__":
    sys.exit(main())
