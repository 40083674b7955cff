"""Envelope encryption and KEK providers: local file and AWS KMS (on moto server)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import pytest
from core.conftest import aws_env

from bucketvault.crypto.envelope import Envelope, associated_data
from bucketvault.crypto.keys import KeyRing, key_provider_from_uri
from bucketvault.crypto.keys.local import LocalKeyProvider
from bucketvault.errors import CryptoError, FailedPrecondition, InvalidArgument


def _ring(tmp_path: Path, name: str = "kek.key") -> KeyRing:
    return KeyRing(key_provider_from_uri(f"file://{tmp_path / name}", {}))


def test_local_kek_is_created_private_and_stable(tmp_path: Path) -> None:
    first = LocalKeyProvider.from_file(tmp_path / "d" / "kek.key")
    mode = stat.S_IMODE(os.stat(tmp_path / "d" / "kek.key").st_mode)
    assert mode == 0o600
    again = LocalKeyProvider.from_file(tmp_path / "d" / "kek.key")
    assert first.kek_id == again.kek_id
    assert "kek" not in repr(first).lower().replace("kek_id", "")


def test_group_readable_kek_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek.key"
    LocalKeyProvider.from_file(path)
    path.chmod(0o644)
    with pytest.raises(FailedPrecondition):
        LocalKeyProvider.from_file(path)


def test_round_trip_and_associated_data_binding(tmp_path: Path) -> None:
    env = Envelope(_ring(tmp_path))
    ad = associated_data("credential", "acme", "cred_1", "GCS_HMAC", 1)
    blob = env.encrypt(b"secret", ad)
    assert env.decrypt(blob, ad) == b"secret"
    assert b"secret" not in blob
    for other in (
        associated_data("credential", "globex", "cred_1", "GCS_HMAC", 1),
        associated_data("credential", "acme", "cred_2", "GCS_HMAC", 1),
        associated_data("credential", "acme", "cred_1", "S3_ACCESS_KEY", 1),
        associated_data("credential", "acme", "cred_1", "GCS_HMAC", 2),
    ):
        with pytest.raises(CryptoError):
            env.decrypt(blob, other)


def test_associated_data_is_unambiguous() -> None:
    assert associated_data("a|b", "c") != associated_data("a", "b|c")


def test_tampering_anywhere_fails(tmp_path: Path) -> None:
    env = Envelope(_ring(tmp_path))
    ad = associated_data("x")
    blob = env.encrypt(b"payload", ad)
    for i in range(len(blob)):
        forged = bytearray(blob)
        forged[i] ^= 0x80
        with pytest.raises(CryptoError):
            env.decrypt(bytes(forged), ad)
    with pytest.raises(CryptoError):
        env.decrypt(blob[:-1], ad)


def test_rewrap_changes_only_the_wrapped_key(tmp_path: Path) -> None:
    old = key_provider_from_uri(f"file://{tmp_path / 'old.key'}", {})
    new = key_provider_from_uri(f"file://{tmp_path / 'new.key'}", {})
    ad = associated_data("r")
    blob = Envelope(KeyRing(old)).encrypt(b"data", ad)
    rotated = Envelope(KeyRing(new, [old])).rewrap(blob, ad)
    assert Envelope(KeyRing(new)).kek_id_of(rotated) == new.kek_id
    assert rotated[-20:] == blob[-20:]  # the ciphertext itself is untouched
    assert Envelope(KeyRing(new)).decrypt(rotated, ad) == b"data"
    with pytest.raises(CryptoError):
        Envelope(KeyRing(new)).decrypt(blob, ad)


def test_unknown_kek_uri_scheme(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        key_provider_from_uri("vault://x", {})


def test_aws_kms_provider_on_moto(moto_url: str) -> None:
    env = aws_env(moto_url)
    kms = boto3.client(
        "kms",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    provider = key_provider_from_uri(f"aws-kms://{key_arn}", env)
    assert provider.kek_id == f"aws-kms:{key_arn}"
    envelope = Envelope(KeyRing(provider))
    ad = associated_data("kms", 1)
    blob = envelope.encrypt(b"via kms", ad)
    assert envelope.decrypt(blob, ad) == b"via kms"
    with pytest.raises(CryptoError):
        envelope.decrypt(blob, associated_data("kms", 2))
