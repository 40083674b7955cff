"""The link listener over HTTPS: the gRPC listener's certificate, a real TLS client that
trusts the test CA, the object fetched from moto through the redirect."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import requests
from aws.aws_support import Peer, s3_bucket, s3_key_mount

from bucketvault.config import Config
from bucketvault.testing.server import start_server
from bucketvault.testing.tls import LocalCA

pytestmark = pytest.mark.moto

TENANT = "acme"
BUCKET = "links-tls"


def test_a_link_opens_over_https_with_the_grpc_certificate(tmp_path: Path, moto: Peer) -> None:
    s3_bucket(moto.url, BUCKET, {"img/a.txt": b"over tls"})
    ca = LocalCA(tmp_path / "ca")
    env = {
        "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
        "AWS_ENDPOINT_URL_S3": moto.url,
        "AWS_REGION": "us-east-1",
    }
    with start_server(tmp_path, env=env, tls=ca.server_tls()) as srv:
        c = srv.client()
        mount_id, _ = s3_key_mount(c, moto.url, BUCKET, "AKIDTLS", tenant=TENANT, name="tls")
        link = c.create_link(TENANT, mount_id, "img/a.txt")
        assert link.url.startswith("https://127.0.0.1:")
        opened = requests.get(link.url, allow_redirects=False, timeout=10, verify=str(ca.ca_file))
        assert opened.status_code == 302 and "AKIDTLS" in opened.headers["Location"]
        # Keep-alive: a second request on the same TLS connection.
        with requests.Session() as session:
            for _ in range(2):
                r = session.get(link.url, timeout=10, verify=str(ca.ca_file))
                assert r.content == b"over tls"
        # A client that does not trust the CA is refused at the handshake.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(link.url, timeout=10)
        # Plain HTTP to the TLS port gets no answer (the handshake fails, the socket closes),
        # and the listener keeps serving TLS clients after it.
        host, port = link.url.split("/")[2].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as plain:
            plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = plain.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert b"200 OK" not in answer
        context = ssl.create_default_context(cafile=str(ca.ca_file))
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_tls_lets_the_listener_bind_off_loopback(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "ca")
    env = {
        **ca.server_tls().env(),
        "BUCKETVAULT_HTTP_LISTEN": "0.0.0.0:8443",
        "BUCKETVAULT_HTTP_PUBLIC_URL": "https://img.example.com",
    }
    http = Config.from_env(env).http
    assert http is not None and http.listen == "0.0.0.0:8443"
