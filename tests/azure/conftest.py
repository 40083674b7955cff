"""Azurite (plain and HTTPS + OAuth) and a local Entra-style token endpoint, per session."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from azure.azurite_support import (
    ACCOUNT,
    AZURITE_BIN,
    CLIENT_ID,
    CLIENT_SECRET,
    Azurite,
    Tls,
    TokenEndpoint,
    free_port,
    make_jwt,
    wait_port,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _start_azurite(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    if not AZURITE_BIN.exists():
        pytest.skip("Azurite is not installed (make azurite)")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(tmp),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc, port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite blob over http, shared key / SAS only."""
    tmp = tmp_path_factory.mktemp("azurite")
    proc, port = _start_azurite(tmp, [])
    try:
        yield Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}", port)
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 (Azurite HTTPS and the token endpoint)."""
    tmp = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp / "cert.pem"
    key_path = tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Tls(cert_path, key_path)


@pytest.fixture(scope="session")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[Azurite]:
    """Azurite blob over https with --oauth basic: user delegation keys work."""
    tmp = tmp_path_factory.mktemp("azurite-oauth")
    proc, port = _start_azurite(
        tmp, ["--oauth", "basic", "--cert", str(tls.cert), "--key", str(tls.key)]
    )
    try:
        yield Azurite(f"https://127.0.0.1:{port}/{ACCOUNT}", port)
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def token_endpoint(tls: Tls) -> Iterator[TokenEndpoint]:
    """A tiny HTTPS Entra look-alike: OpenID discovery + client-credentials token grant."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            base = f"https://127.0.0.1:{self.server.server_address[1]}"
            parts = self.path.split("?")[0].strip("/").split("/")
            tenant = parts[0]
            if self.path.split("?")[0].endswith("/.well-known/openid-configuration"):
                self._json(
                    200,
                    {
                        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/{tenant}/v2.0",
                        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                    },
                )
                return
            self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            tenant = self.path.strip("/").split("/")[0]
            seen.append({"tenant": tenant, **{k: form.get(k, "") for k in ("client_id", "scope")}})
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                self._json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
                return
            self._json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": make_jwt(tenant),
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TokenEndpoint(f"https://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
