"""Certificates made at test time (never committed): a self-signed one for local peers,
and a small CA that issues server and client certificates for the gRPC listener.

Azurite needs HTTPS before it will issue user-delegation keys; ``localhost_certificate``
serves it and local token endpoints, and clients trust it as their CA bundle.
``LocalCA`` issues what TLS and mTLS tests need: a server certificate for 127.0.0.1 and
localhost, and client certificates naming a caller by URI SAN (SPIFFE id) or DNS SAN.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the certificate (also the CA to trust) and its private key."""

    cert: Path
    key: Path


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write by rename, as cert-manager's secret volumes do: a reader sees old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_pair(files: TlsFiles, cert_pem: bytes, key_pem: bytes) -> None:
    """Put a certificate and key at files' paths (key first, 0600)."""
    _replace(files.key, key_pem, 0o600)
    _replace(files.cert, cert_pem, 0o644)


def localhost_certificate(directory: Path, *, days: int = 30) -> TlsFiles:
    """Write a self-signed certificate for 127.0.0.1 and localhost into ``directory``."""
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
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    write_pair(files, cert.public_bytes(serialization.Encoding.PEM), _private_pem(key))
    return files


@dataclass(frozen=True)
class ServerTls:
    """What a TLS test server needs: its pair, the CA clients trust, the client CA (mTLS),
    and a client certificate for clients that authenticate by token over mTLS."""

    server: TlsFiles
    ca: Path
    client_ca: Path | None = None
    client: TlsFiles | None = None

    def env(self) -> dict[str, str]:
        """The server's BUCKETVAULT_TLS_* settings for these files."""
        env = {
            "BUCKETVAULT_TLS_CERT_FILE": str(self.server.cert),
            "BUCKETVAULT_TLS_KEY_FILE": str(self.server.key),
        }
        if self.client_ca is not None:
            env["BUCKETVAULT_TLS_CLIENT_CA_FILE"] = str(self.client_ca)
        return env


@dataclass
class LocalCA:
    """A throw-away certificate authority in ``directory`` (its key never leaves memory)."""

    directory: Path
    name: str = "bucketvault test CA"
    _key: ec.EllipticCurvePrivateKey = field(
        init=False, repr=False, default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    _cert: x509.Certificate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        _replace(self.ca_file, self._cert.public_bytes(serialization.Encoding.PEM), 0o644)

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM), for clients' and the server's trust."""
        return self.directory / "ca.pem"

    def issue_pem(
        self,
        common_name: str,
        *,
        dns: Sequence[str] = (),
        uris: Sequence[str] = (),
        ips: Sequence[str] = (),
        server: bool = False,
    ) -> tuple[bytes, bytes]:
        """A fresh leaf certificate and its key, as PEM (cert, key); SANs in the order given."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [
            *(x509.UniformResourceIdentifier(u) for u in uris),
            *(x509.DNSName(d) for d in dns),
            *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips),
        ]
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)

    def issue(
        self,
        name: str,
        *,
        dns: Sequence[str] = (),
        uris: Sequence[str] = (),
        ips: Sequence[str] = (),
        server: bool = False,
    ) -> TlsFiles:
        """Issue a certificate into ``directory/name/`` (replacing any there: a rotation)."""
        files = TlsFiles(self.directory / name / "cert.pem", self.directory / name / "key.pem")
        write_pair(files, *self.issue_pem(name, dns=dns, uris=uris, ips=ips, server=server))
        return files

    def issue_server(self, name: str = "server") -> TlsFiles:
        """A server certificate for 127.0.0.1 and localhost."""
        return self.issue(name, dns=["localhost"], ips=["127.0.0.1"], server=True)

    def server_tls(self, *, mtls: bool = False) -> ServerTls:
        """A server pair from this CA; with mtls, client certificates of this CA required
        (and one issued, naming no principal: its clients' tokens decide)."""
        if not mtls:
            return ServerTls(self.issue_server(), self.ca_file)
        client = self.issue("client", dns=["client.test"])
        return ServerTls(self.issue_server(), self.ca_file, self.ca_file, client)


def served_certificate(
    address: str, ca: Path, *, client: TlsFiles | None = None
) -> x509.Certificate:
    """The certificate a TLS listener presents to a new connection (verified against ca)."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise RuntimeError(f"{address} presented no certificate")
    return x509.load_der_x509_certificate(der)


__all__ = [
    "LocalCA",
    "ServerTls",
    "TlsFiles",
    "localhost_certificate",
    "served_certificate",
    "write_pair",
]
