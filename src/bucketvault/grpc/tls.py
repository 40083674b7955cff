"""TLS for the gRPC listener: server credentials that follow certificate rotation on disk,
the plaintext rule, and the verified identities of a client certificate.

cert-manager (or any rotator) replaces the PEM files in place; grpc asks our fetcher for a
configuration before every handshake, so new connections get the new pair without a
restart. A pair that cannot be read, or whose key does not match its certificate, is
refused and the previous one keeps serving: a half-written rotation must not take the
listener down. Messages name files, never their content: a key file is a secret.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from bucketvault.config import Config, TlsConfig, is_loopback
from bucketvault.errors import InvalidArgument

log = logging.getLogger(__name__)

# What identifies a file's version without reading it: device, inode, size, mtime, ctime.
# A rename (Kubernetes secret volumes swap a symlink) changes the inode; an in-place
# write changes size or times.
FileStamp = tuple[int, int, int, int, int]


def _stamp(path: Path) -> FileStamp:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class CertificatePair:
    """A certificate chain and its key, checked to belong together."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)
    client_ca_pem: bytes | None
    leaf: x509.Certificate = field(compare=False)

    def configuration(self) -> Any:
        """The grpc form (a ServerCertificateConfiguration)."""
        return grpc.ssl_server_certificate_configuration(
            [(self.key_pem, self.chain_pem)], root_certificates=self.client_ca_pem
        )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(
            f"cannot read the TLS {what} file {path} ({exc.strerror})", reason="INVALID_CONFIG"
        ) from None


def load_pair(tls: TlsConfig) -> CertificatePair:
    """Read and check the files; InvalidArgument (naming the file, never its content)."""
    chain_pem = _read(tls.cert_file, "certificate")
    key_pem = _read(tls.key_file, "key")
    client_ca_pem = _read(tls.client_ca_file, "client CA") if tls.client_ca_file else None
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise InvalidArgument(
            f"{tls.cert_file} holds no PEM certificate", reason="INVALID_CONFIG"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # from None: the parser's own message could one day quote what it choked on.
        raise InvalidArgument(
            f"{tls.key_file} holds no unencrypted PEM private key", reason="INVALID_CONFIG"
        ) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise InvalidArgument(
            f"the key in {tls.key_file} does not match the certificate in {tls.cert_file}",
            reason="INVALID_CONFIG",
        )
    if client_ca_pem is not None:
        try:
            x509.load_pem_x509_certificates(client_ca_pem)
        except ValueError:
            raise InvalidArgument(
                f"{tls.client_ca_file} holds no PEM certificate", reason="INVALID_CONFIG"
            ) from None
    return CertificatePair(chain_pem, key_pem, client_ca_pem, chain[0])


class ReloadingCertificates:
    """grpc's certificate-configuration fetcher: a new pair when the files change.

    A stat of two or three files per handshake costs microseconds against the handshake's
    milliseconds, so there is no polling interval (and no clock): a rotation is seen by
    the very next connection.
    """

    def __init__(self, tls: TlsConfig) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        # Stamped before reading, so a rotation racing start-up is picked up next time.
        try:
            stamps = self._stamps()
        except OSError:
            stamps = ()  # load_pair names the file it cannot read
        self._pair = load_pair(tls)
        self._loaded: tuple[FileStamp, ...] = stamps
        # What failed last (the files' stamps, or the stat error): warn once, and retry
        # only when the files change again.
        self._refused: object = None

    @property
    def current(self) -> CertificatePair:
        """The pair new connections are served."""
        return self._pair

    def _paths(self) -> tuple[Path, ...]:
        tls = self._tls
        return (tls.cert_file, tls.key_file, *((tls.client_ca_file,) if tls.client_ca_file else ()))

    def _stamps(self) -> tuple[FileStamp, ...]:
        return tuple(_stamp(p) for p in self._paths())

    def initial(self) -> Any:
        """The configuration to start with."""
        return self._pair.configuration()

    def __call__(self) -> Any:
        """A new configuration when the files changed and load, else None (keep serving)."""
        with self._lock:
            try:
                stamps = self._stamps()
            except OSError as exc:
                self._refuse(
                    ("stat", exc.filename, exc.errno),
                    f"cannot stat {exc.filename} ({exc.strerror})",
                )
                return None
            if stamps in (self._loaded, self._refused):
                return None
            try:
                pair = load_pair(self._tls)
                configuration = pair.configuration()
            except InvalidArgument as exc:
                self._refuse(stamps, exc.message)
                return None
            except Exception as exc:
                # This runs inside grpc's handshake: never let it raise.
                self._refuse(stamps, f"unexpected {type(exc).__name__}")
                return None
            self._pair, self._loaded, self._refused = pair, stamps, None
            log.info(
                "tls: serving a new certificate serial=%x not_after=%s",
                pair.leaf.serial_number,
                pair.leaf.not_valid_after_utc.isoformat(),
            )
            return configuration

    def _refuse(self, what: object, why: str) -> None:
        if what == self._refused:
            return
        self._refused = what
        log.warning(
            "tls: new certificate files refused, still serving serial=%x: %s",
            self._pair.leaf.serial_number,
            why,
        )


def server_credentials(tls: TlsConfig) -> tuple[grpc.ServerCredentials, ReloadingCertificates]:
    """Credentials that reload the pair on rotation; client certificates required when a
    client CA is configured."""
    certificates = ReloadingCertificates(tls)
    credentials = grpc.dynamic_ssl_server_credentials(
        certificates.initial(),
        certificates,
        require_client_authentication=tls.client_ca_file is not None,
    )
    return credentials, certificates


def listener_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS credentials for the listener, or None for plaintext (Config allowed it)."""
    if config.tls is not None:
        credentials, certificates = server_credentials(config.tls)
        log.info(
            "tls: on, client certificates %s, serial=%x",
            "required" if config.tls.client_ca_file else "not requested",
            certificates.current.leaf.serial_number,
        )
        return credentials
    if not is_loopback(config.listen):
        log.warning(
            "tls: off on the non-loopback address %s (BUCKETVAULT_ALLOW_PLAINTEXT=true): "
            "tokens and requests cross the network in the clear unless something else "
            "encrypts them",
            config.listen,
        )
    return None


def _values(auth_context: Mapping[str, Sequence[bytes]], key: str) -> list[str]:
    return [v.decode("utf-8", "replace") for v in auth_context.get(key, ())]


def _identity(uris: Sequence[str], dns_names: Sequence[str]) -> tuple[str, ...]:
    """The certificate's URI SANs (a SPIFFE id) or, with none, its first DNS SAN only:
    a later DNS name is not the caller's identity, and must not be able to pick a
    principal the first one does not name."""
    if uris:
        return tuple(uris)
    return tuple(dns_names[:1])


def peer_identities(auth_context: Mapping[str, Sequence[bytes]]) -> tuple[str, ...]:
    """A verified client certificate's identity (see _identity). Empty without one.

    grpc reports URI and DNS SANs apart (peer_uri, peer_dns); its mixed SAN list does not
    say which is which, so without those keys the certificate itself is parsed.
    """
    if "peer_uri" in auth_context or "peer_dns" in auth_context:
        return _identity(_values(auth_context, "peer_uri"), _values(auth_context, "peer_dns"))
    pems = auth_context.get("x509_pem_cert", ())
    if not pems:
        return ()
    cert = x509.load_pem_x509_certificate(next(iter(pems)))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return _identity(
        san.get_values_for_type(x509.UniformResourceIdentifier),
        san.get_values_for_type(x509.DNSName),
    )


__all__ = [
    "CertificatePair",
    "ReloadingCertificates",
    "listener_credentials",
    "load_pair",
    "peer_identities",
    "server_credentials",
]
