"""TLS and mTLS on the gRPC listener, through the real server on 127.0.0.1.

Certificates come from a CA made at test time (bucketvault.testing.tls.LocalCA).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from core.conftest import PRINCIPALS
from core.secrets_fixtures import sample
from cryptography import x509

from bucketvault import errors
from bucketvault.client import BucketVaultClient
from bucketvault.config import Config, TlsConfig
from bucketvault.grpc.tls import (
    listener_credentials,
    load_pair,
    peer_identities,
    server_credentials,
)
from bucketvault.testing.fakes import offline_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.testing.tls import LocalCA, TlsFiles, served_certificate, write_pair

INGEST_ID = "spiffe://acme.example/ns/ml/sa/ingest"
CERT_PRINCIPALS = [
    ("ingest", INGEST_ID, ["operator"], ["acme"]),
    ("web", "web.acme.internal", ["auditor"], ["acme"]),
]
TLS_LOG = "bucketvault.grpc.tls"


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "ca")


@pytest.fixture
def tls_server(tmp_path: Path, ca: LocalCA) -> Iterator[RunningServer]:
    """TLS, no client certificates: callers bring bearer tokens."""
    with start_server(
        tmp_path, principals=PRINCIPALS, providers=offline_providers(), tls=ca.server_tls()
    ) as srv:
        yield srv


@pytest.fixture
def mtls_server(tmp_path: Path, ca: LocalCA) -> Iterator[RunningServer]:
    """TLS with client certificates of ca required; two principals named by them."""
    with start_server(
        tmp_path,
        principals=PRINCIPALS,
        cert_principals=CERT_PRINCIPALS,
        providers=offline_providers(),
        tls=ca.server_tls(mtls=True),
    ) as srv:
        yield srv


def _principals(server: RunningServer, action: str) -> list[str]:
    return [r.principal for r in server.client().query_audit("acme", action=action)]


# -- TLS ----------------------------------------------------------------------------------


def test_tls_with_a_bearer_token_works(tls_server: RunningServer) -> None:
    admin = tls_server.client()
    cred = admin.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    viewer = tls_server.client(tls_server.tokens["viewer"])
    with pytest.raises(errors.PermissionDenied):
        viewer.get_credential("acme", cred.credential_id)
    assert _principals(tls_server, "vault.register") == ["admin"]


def test_a_plaintext_client_is_refused_by_a_tls_port(tls_server: RunningServer) -> None:
    with (
        BucketVaultClient(tls_server.address, tls_server.admin_token, timeout=10) as plain,
        pytest.raises(errors.Unavailable),
    ):
        plain.registration_key()


def test_a_server_certificate_from_another_ca_is_not_trusted(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    other = LocalCA(tmp_path / "other-ca")
    with (
        BucketVaultClient(
            tls_server.address, tls_server.admin_token, tls_ca=other.ca_file, timeout=10
        ) as c,
        pytest.raises(errors.Unavailable),
    ):
        c.registration_key()


# -- mTLS ---------------------------------------------------------------------------------


def test_a_client_certificate_names_its_principal(mtls_server: RunningServer, ca: LocalCA) -> None:
    ingest = mtls_server.client("", cert=ca.issue("ingest", uris=[INGEST_ID], dns=["x.acme"]))
    ingest.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    # The principal's limits apply: operator of acme only, and not an auditor.
    with pytest.raises(errors.PermissionDenied):
        ingest.register_credential("globex", "GCS_HMAC", sample("GCS_HMAC"))
    with pytest.raises(errors.PermissionDenied):
        ingest.verify_audit()
    assert _principals(mtls_server, "vault.register") == ["ingest"]


def test_without_a_uri_san_the_dns_san_names_the_caller(
    mtls_server: RunningServer, ca: LocalCA
) -> None:
    web = mtls_server.client("", cert=ca.issue("web", dns=["web.acme.internal"]))
    assert list(web.list_credentials("acme")) == []
    with pytest.raises(errors.PermissionDenied):
        list(web.list_credentials("globex"))
    assert _principals(mtls_server, "vault.list_credentials") == ["web"]


def test_a_bearer_token_decides_over_the_certificate(
    mtls_server: RunningServer, ca: LocalCA
) -> None:
    cert = ca.issue("ingest", uris=[INGEST_ID])
    both = mtls_server.client(mtls_server.tokens["auditor"], cert=cert)
    assert both.verify_audit().ok  # an auditor may; ingest alone may not
    assert [r.principal for r in mtls_server.client().query_audit(action="audit.verify")] == [
        "auditor"
    ]


def test_an_unknown_certificate_identity_is_cert_unknown(
    mtls_server: RunningServer, ca: LocalCA
) -> None:
    stranger = mtls_server.client(
        "", cert=ca.issue("stranger", uris=["spiffe://acme.example/ns/ml/sa/stranger"])
    )
    with pytest.raises(errors.Unauthenticated) as exc:
        stranger.registration_key()
    assert exc.value.reason == "CERT_UNKNOWN"


def test_a_client_certificate_from_another_ca_is_refused_at_handshake(
    mtls_server: RunningServer, tmp_path: Path
) -> None:
    forged = LocalCA(tmp_path / "other-ca").issue("ingest", uris=[INGEST_ID])
    c = mtls_server.client(mtls_server.admin_token, cert=forged)
    with pytest.raises(errors.Unavailable):
        c.registration_key()


def test_no_client_certificate_is_refused_when_required(mtls_server: RunningServer) -> None:
    # Not even a valid token gets past the handshake.
    with (
        BucketVaultClient(
            mtls_server.address, mtls_server.admin_token, tls_ca=mtls_server.tls_ca, timeout=10
        ) as c,
        pytest.raises(errors.Unavailable),
    ):
        c.registration_key()


def test_the_identity_is_the_uri_san_or_else_the_first_dns_san(ca: LocalCA) -> None:
    with_uri, _ = ca.issue_pem(
        "x", uris=["spiffe://a/1"], dns=["b.example", "a.example"], ips=["10.0.0.1"]
    )
    dns_only, _ = ca.issue_pem("y", dns=["b.example", "a.example"], ips=["10.0.0.1"])
    # grpc's own split of the SANs, and the certificate parsed when grpc gives only the PEM.
    uri_split = {"peer_uri": [b"spiffe://a/1"], "peer_dns": [b"b.example", b"a.example"]}
    assert peer_identities(uri_split) == ("spiffe://a/1",)
    assert peer_identities({"x509_pem_cert": [with_uri]}) == ("spiffe://a/1",)
    # Without a URI SAN only the first DNS name counts: a second one cannot pick a principal.
    dns_split = {"peer_dns": [b"b.example", b"a.example"]}
    assert peer_identities(dns_split) == ("b.example",)
    assert peer_identities({"x509_pem_cert": [dns_only]}) == ("b.example",)
    assert peer_identities({"transport_security_type": [b"ssl"]}) == ()


# -- rotation -----------------------------------------------------------------------------


def x509_serial(files: TlsFiles) -> int:
    return x509.load_pem_x509_certificate(files.cert.read_bytes()).serial_number


def _serial(server: RunningServer) -> int:
    assert server.tls_ca is not None
    return served_certificate(server.address, server.tls_ca).serial_number


def test_rotated_files_are_served_to_new_connections(
    tls_server: RunningServer, ca: LocalCA
) -> None:
    before = _serial(tls_server)
    rotated = ca.issue_server()  # the same paths, as cert-manager rewrites its secret
    after = x509_serial(rotated)
    assert after != before
    assert _serial(tls_server) == after
    # And RPCs on a new channel work against the new pair.
    assert tls_server.client().registration_key().key_id.startswith("rk_")


def test_unreadable_or_mismatched_new_files_keep_the_old_pair(
    tls_server: RunningServer, ca: LocalCA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TLS_LOG)
    pair = TlsFiles(ca.directory / "server" / "cert.pem", ca.directory / "server" / "key.pem")
    before = _serial(tls_server)

    write_pair(pair, b"-----BEGIN CERTIFICATE-----\nnot a certificate\n", pair.key.read_bytes())
    assert _serial(tls_server) == before
    assert "refused" in caplog.text and "holds no PEM certificate" in caplog.text

    new_cert, _ = ca.issue_pem("server", dns=["localhost"], ips=["127.0.0.1"], server=True)
    _, other_key = ca.issue_pem("server", dns=["localhost"], ips=["127.0.0.1"], server=True)
    write_pair(pair, new_cert, other_key)
    assert _serial(tls_server) == before
    assert "does not match" in caplog.text

    pair.key.unlink()
    assert _serial(tls_server) == before
    assert "cannot stat" in caplog.text
    # Refusals name files, never their content.
    assert "PRIVATE KEY" not in caplog.text

    fixed = ca.issue_server()
    assert _serial(tls_server) == x509_serial(fixed)


def test_bad_files_stop_start_up_without_quoting_the_key(ca: LocalCA) -> None:
    good = ca.issue_server()
    other = ca.issue("other", dns=["localhost"], server=True)
    mismatched = TlsConfig(good.cert, other.key)
    with pytest.raises(errors.InvalidArgument) as exc:
        server_credentials(mismatched)
    assert exc.value.reason == "INVALID_CONFIG" and "does not match" in exc.value.message
    key_text = other.key.read_text()
    body = key_text.splitlines()[1]
    for shown in (str(exc.value), repr(exc.value), exc.value.message):
        assert body not in shown
    assert exc.value.__cause__ is None
    # A key that does not parse: its bytes are not echoed either.
    garbage = ca.directory / "garbage.key"
    garbage.write_text(
        "-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(errors.InvalidArgument) as exc:
        load_pair(TlsConfig(good.cert, garbage))
    assert "SECRETSECRET" not in str(exc.value) and exc.value.__cause__ is None
    assert body not in repr(load_pair(TlsConfig(good.cert, good.key)))


# -- the plaintext rule -------------------------------------------------------------------


def _config(tmp_path: Path, **env: str) -> Config:
    return Config.from_env({"BUCKETVAULT_DATA_DIR": str(tmp_path / "data"), **env})


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:50051", "127.1.2.3:1", "[::1]:50051", "localhost:50051"]
)
def test_plaintext_is_fine_on_loopback(tmp_path: Path, listen: str) -> None:
    assert _config(tmp_path, BUCKETVAULT_LISTEN=listen).tls is None


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "bv:1"])
def test_plaintext_elsewhere_stops_start_up(tmp_path: Path, listen: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        _config(tmp_path, BUCKETVAULT_LISTEN=listen)
    assert exc.value.reason == "INVALID_CONFIG"
    for name in ("BUCKETVAULT_TLS_CERT_FILE", "BUCKETVAULT_ALLOW_PLAINTEXT"):
        assert name in exc.value.message


def test_allow_plaintext_starts_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TLS_LOG)
    config = _config(
        tmp_path, BUCKETVAULT_LISTEN="0.0.0.0:50051", BUCKETVAULT_ALLOW_PLAINTEXT="true"
    )
    assert listener_credentials(config) is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "0.0.0.0:50051" in caplog.text and "BUCKETVAULT_ALLOW_PLAINTEXT" in caplog.text
    caplog.clear()
    assert listener_credentials(_config(tmp_path)) is None
    assert caplog.records == []  # loopback plaintext: nothing to warn about


@pytest.mark.parametrize(
    "env",
    [
        {"BUCKETVAULT_TLS_CERT_FILE": "/x/tls.crt"},
        {"BUCKETVAULT_TLS_KEY_FILE": "/x/tls.key"},
        {"BUCKETVAULT_TLS_CLIENT_CA_FILE": "/x/ca.crt"},
    ],
)
def test_half_a_tls_setting_stops_start_up(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        _config(tmp_path, **env)
    assert exc.value.reason == "INVALID_CONFIG"


def test_tls_settings_are_parsed(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        BUCKETVAULT_LISTEN="0.0.0.0:50051",
        BUCKETVAULT_TLS_CERT_FILE="/tls/tls.crt",
        BUCKETVAULT_TLS_KEY_FILE="/tls/tls.key",
        BUCKETVAULT_TLS_CLIENT_CA_FILE="/tls/ca.crt",
    )
    assert config.tls == TlsConfig(Path("/tls/tls.crt"), Path("/tls/tls.key"), Path("/tls/ca.crt"))
