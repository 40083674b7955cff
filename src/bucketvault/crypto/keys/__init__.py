"""KEK providers, chosen by URI scheme at the composition root (tink-style, no global registry).

- ``file:///abs/path/kek.key``: a local 32-byte key file (created 0600 on first use)
- ``aws-kms://arn:aws:kms:region:acct:key/id`` (or an alias ARN): AWS KMS through boto3;
  ``AWS_ENDPOINT_URL_KMS`` / ``AWS_ENDPOINT_URL`` point it at an emulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import boto3

from bucketvault.crypto.keys.awskms import AwsKmsKeyProvider
from bucketvault.crypto.keys.base import KeyProvider
from bucketvault.crypto.keys.local import LocalKeyProvider
from bucketvault.errors import CryptoError, InvalidArgument


def key_provider_from_uri(uri: str, env: Mapping[str, str], *, create: bool = True) -> KeyProvider:
    """Build the KeyProvider a KEK URI names; create=False never makes a new key file."""
    if uri.startswith("file://"):
        return LocalKeyProvider.from_file(Path(uri.removeprefix("file://")), create=create)
    if uri.startswith("aws-kms://"):
        key_id = uri.removeprefix("aws-kms://")
        region = key_id.split(":")[3] if key_id.startswith("arn:") else env.get("AWS_REGION", "")
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            region_name=region or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
        endpoint = env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL") or None
        return AwsKmsKeyProvider(key_id, session.client("kms", endpoint_url=endpoint))
    raise InvalidArgument(
        f"unsupported KEK URI scheme in {uri.split(':', 1)[0]!r}", reason="INVALID_KEK_URI"
    )


class KeyRing:
    """The current KEK (wraps new data keys) plus older ones (unwrap only, until re-wrapped)."""

    def __init__(self, current: KeyProvider, older: Iterable[KeyProvider] = ()) -> None:
        self.current = current
        self._by_id = {p.kek_id: p for p in (*older, current)}

    def get(self, kek_id: str) -> KeyProvider:
        try:
            return self._by_id[kek_id]
        except KeyError:
            raise CryptoError(
                f"no key provider for KEK {kek_id!r} is configured", reason="UNKNOWN_KEK"
            ) from None


__all__ = ["KeyProvider", "KeyRing", "key_provider_from_uri"]
