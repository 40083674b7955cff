"""Validation of each credential kind's sealed JSON, and the non-secret metadata it yields.

Every error names the field at fault and never echoes a value: a malformed secret is
still a secret. Cloud-side checks (AssumeRole ...) happen later, in the provider.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind, SecretDocument
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI, UrlPolicy

MAX_SECRET_BYTES = 64 * 1024
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_PRINTABLE_ID = re.compile(r"^[\x21-\x7e]{3,128}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_AZ_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_GUIDISH = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


@dataclass(frozen=True)
class ValidatedSecret:
    document: SecretDocument
    metadata: Mapping[str, str]
    # Canonical JSON (sorted keys, no spaces): what is encrypted and fingerprinted.
    canonical: bytes = field(repr=False)


def _bad(name: str, problem: str, reason: str = "INVALID_CREDENTIAL") -> InvalidArgument:
    return InvalidArgument(
        f"secret field {name!r} {problem}", reason=reason, field=f"secret.{name}"
    )


class _Fields:
    """Typed access to the JSON object, raising field-named errors."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def req(self, name: str, pattern: re.Pattern[str] | None = None, max_len: int = 4096) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            raise _bad(name, "is required")
        return self._check(name, value, pattern, max_len)

    def opt(self, name: str, pattern: re.Pattern[str] | None = None, max_len: int = 4096) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            return ""
        return self._check(name, value, pattern, max_len)

    @staticmethod
    def _check(name: str, value: Any, pattern: re.Pattern[str] | None, max_len: int) -> str:
        if not isinstance(value, str):
            raise _bad(name, "must be a string")
        if len(value) > max_len:
            raise _bad(name, f"is longer than {max_len} characters")
        if pattern is not None and not pattern.match(value):
            raise _bad(name, "is malformed")
        return value

    def only(self, *allowed: str) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            shown = ", ".join(repr(str(n)[:40]) for n in unknown[:5])
            raise InvalidArgument(
                f"unknown secret fields: {shown}", reason="UNKNOWN_FIELD", field="sealed_secret"
            )


def _account_name(account_url: str) -> str:
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if host.endswith(".core.windows.net"):
        return host.split(".", 1)[0]
    # Path-style (Azurite, Azure Stack): http://host:port/{account}
    first = parts.path.strip("/").split("/", 1)[0]
    return first or host.split(".", 1)[0]


def parse_sas_token(token: str) -> dict[str, str]:
    """The signed fields of a SAS token (query string, with or without the leading '?')."""
    query = parse_qs(token.lstrip("?"), keep_blank_values=True, strict_parsing=False)
    return {k: v[0] for k, v in query.items() if v}


def _sas_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            parsed = datetime.fromisoformat(value + "T00:00:00+00:00")
        else:
            raise _bad("sas_token", f"has a malformed {name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Validator:
    """Validates sealed plaintexts against each kind's schema and the URL policy."""

    def __init__(self, url_policy: UrlPolicy, now: Callable[[], datetime]) -> None:
        self._urls = url_policy
        self._now = now
        self._by_kind: dict[CredentialKind, Callable[[_Fields, str], dict[str, str]]] = {
            CredentialKind.AWS_ROLE: self._aws_role,
            CredentialKind.S3_ACCESS_KEY: self._s3_access_key,
            CredentialKind.GCS_SERVICE_ACCOUNT: self._gcs_service_account,
            CredentialKind.GCS_HMAC: self._gcs_hmac,
            CredentialKind.AZURE_SAS: self._azure_sas,
            CredentialKind.AZURE_SHARED_KEY: self._azure_shared_key,
            CredentialKind.AZURE_SERVICE_PRINCIPAL: self._azure_service_principal,
        }

    def validate(self, kind: CredentialKind, plaintext: bytes, external_id: str) -> ValidatedSecret:
        """Parse and check; return the document and its non-secret metadata."""
        if len(plaintext) > MAX_SECRET_BYTES:
            raise InvalidArgument(
                "the secret is too large", reason="SECRET_TOO_LARGE", field="sealed_secret"
            )
        try:
            data = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            # No position or excerpt: the parser's message would quote the secret.
            raise InvalidArgument(
                "the sealed secret is not a UTF-8 JSON object",
                reason="SECRET_NOT_JSON",
                field="sealed_secret",
            ) from None
        if not isinstance(data, dict):
            raise InvalidArgument(
                "the sealed secret is not a UTF-8 JSON object",
                reason="SECRET_NOT_JSON",
                field="sealed_secret",
            )
        metadata = self._by_kind[kind](_Fields(data), external_id)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return ValidatedSecret(SecretDocument(kind, data), metadata, canonical)

    def _aws_role(self, f: _Fields, external_id: str) -> dict[str, str]:
        f.only("role_arn", "external_id")
        arn = f.req("role_arn", _ROLE_ARN, 2048)
        given = f.opt("external_id", max_len=1224)
        if given and given != external_id:
            # Confused-deputy rule: only the ExternalId we issued for this tenant is ever used.
            raise _bad(
                "external_id",
                "is not the ExternalId issued for this tenant",
                "EXTERNAL_ID_MISMATCH",
            )
        match = _ROLE_ARN.match(arn)
        return {"role_arn": arn, "account_id": match.group(1) if match else ""}

    def _s3_access_key(self, f: _Fields, _: str) -> dict[str, str]:
        f.only("access_key_id", "secret_access_key", "endpoint_url", "region")
        access_key_id = f.req("access_key_id", _PRINTABLE_ID)
        f.req("secret_access_key", max_len=256)
        endpoint = f.opt("endpoint_url", max_len=2048)
        if endpoint:
            endpoint = self._urls.check_endpoint(endpoint, field="secret.endpoint_url")
        region = f.opt("region", _REGION)
        return {"access_key_id": access_key_id, "endpoint_url": endpoint, "region": region}

    def _gcs_service_account(self, f: _Fields, _: str) -> dict[str, str]:
        if f.req("type", max_len=64) != "service_account":
            raise _bad("type", "must be 'service_account'")
        email = f.req("client_email", _EMAIL, 320)
        key_pem = f.req("private_key", max_len=16384)
        try:
            key = load_pem_private_key(key_pem.encode("utf-8"), password=None)
        except (ValueError, TypeError):
            raise _bad("private_key", "is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise _bad("private_key", "must be an RSA key of at least 2048 bits")
        token_uri = self._urls.check_token_uri(
            f.opt("token_uri", max_len=2048) or GOOGLE_TOKEN_URI, field="secret.token_uri"
        )
        return {
            "client_email": email,
            "project_id": f.opt("project_id", max_len=128),
            "private_key_id": f.opt("private_key_id", max_len=128),
            "token_uri": token_uri,
        }

    def _gcs_hmac(self, f: _Fields, _: str) -> dict[str, str]:
        f.only("access_id", "secret")
        access_id = f.req("access_id", _PRINTABLE_ID)
        f.req("secret", max_len=256)
        return {"access_id": access_id}

    def _account_url(self, f: _Fields) -> tuple[str, str]:
        url = self._urls.check_endpoint(
            f.req("account_url", max_len=2048), field="secret.account_url"
        )
        return url, _account_name(url)

    def _azure_sas(self, f: _Fields, _: str) -> dict[str, str]:
        f.only("account_url", "sas_token")
        url, account = self._account_url(f)
        token = f.req("sas_token", max_len=8192)
        fields = parse_sas_token(token)
        for name in ("sv", "se", "sp", "sig"):
            if not fields.get(name):
                raise _bad("sas_token", f"has no {name!r} parameter")
        if not (fields.get("sr") or fields.get("srt")):
            raise _bad("sas_token", "has neither 'sr' nor 'srt'")
        expiry = _sas_time(fields["se"], "expiry (se)")
        start = _sas_time(fields["st"], "start (st)") if fields.get("st") else None
        if "r" not in fields["sp"]:
            raise _bad("sas_token", "does not grant read ('r' in sp)", "SAS_PERMISSION_MISSING")
        if expiry <= self._now():
            raise FailedPrecondition(
                "the SAS token has expired", reason="SAS_EXPIRED", field="secret.sas_token"
            )
        return {
            "account_url": url,
            "account_name": account,
            "sas_version": fields["sv"],
            "sas_expiry": _iso(expiry),
            "sas_start": _iso(start) if start else "",
            "sas_permissions": fields["sp"],
            "sas_resource": fields.get("sr") or fields.get("srt", ""),
            "sas_kind": "account" if fields.get("srt") else "service",
        }

    def _azure_shared_key(self, f: _Fields, _: str) -> dict[str, str]:
        f.only("account_url", "account_name", "account_key")
        url, _derived = self._account_url(f)
        name = f.req("account_name", _AZ_ACCOUNT)
        key = f.req("account_key", max_len=256)
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("account_key", "is not base64") from None
        return {"account_url": url, "account_name": name}

    def _azure_service_principal(self, f: _Fields, _: str) -> dict[str, str]:
        f.only("account_url", "tenant_id", "client_id", "client_secret")
        url, account = self._account_url(f)
        tenant_id = f.req("tenant_id", _GUIDISH)
        client_id = f.req("client_id", _GUIDISH)
        f.req("client_secret", max_len=1024)
        return {
            "account_url": url,
            "account_name": account,
            "tenant_id": tenant_id,
            "client_id": client_id,
        }


__all__ = ["MAX_SECRET_BYTES", "ValidatedSecret", "Validator", "parse_sas_token"]
