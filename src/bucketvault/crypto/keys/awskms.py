"""A KEK in AWS KMS: data keys are wrapped by KMS Encrypt/Decrypt, the KEK never leaves KMS."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bucketvault.errors import CryptoError, Unavailable


class AwsKmsKeyProvider:
    def __init__(self, key_id: str, client: Any) -> None:
        # client: a boto3 KMS client, injected so tests can point it at moto server.
        self._key_id = key_id
        self._client = client
        self.kek_id = "aws-kms:" + key_id

    def __repr__(self) -> str:
        return f"AwsKmsKeyProvider(kek_id={self.kek_id!r})"

    @staticmethod
    def _context(associated_data: bytes) -> dict[str, str]:
        # KMS binds an encryption context (string map) the way AEAD binds associated data.
        return {"bucketvault-ad": hashlib.sha256(associated_data).hexdigest()}

    def wrap(self, dek: bytes, associated_data: bytes) -> bytes:
        try:
            out = self._client.encrypt(
                KeyId=self._key_id, Plaintext=dek, EncryptionContext=self._context(associated_data)
            )
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable("KMS refused to wrap a data key", reason="KMS_UNAVAILABLE") from exc
        return bytes(out["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        try:
            out = self._client.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=wrapped,
                EncryptionContext=self._context(associated_data),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise CryptoError("a data key failed to unwrap", reason="UNWRAP_FAILED") from exc
            raise Unavailable("KMS refused to unwrap a data key", reason="KMS_UNAVAILABLE") from exc
        except BotoCoreError as exc:
            raise Unavailable("KMS is unreachable", reason="KMS_UNAVAILABLE") from exc
        return bytes(out["Plaintext"])


__all__ = ["AwsKmsKeyProvider"]
