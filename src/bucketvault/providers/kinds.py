"""How a provider declares a credential kind: its secret's schema, parser and checks.

Each provider folder has a ``kinds.py`` with one ``KindSpec`` per kind it serves. The
spec is the only place that kind's secret JSON is understood: the same ``read`` runs at
registration (before anything is stored) and when a stored credential is opened, so the
two can never disagree. The core only decodes the JSON object and calls ``read``.

Every error names the field at fault and never echoes a value: a malformed secret is
still a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bucketvault.errors import FailedPrecondition, InvalidArgument
from bucketvault.models import CredentialKind
from bucketvault.urlpolicy import UrlPolicy

MAX_SECRET_BYTES = 64 * 1024
# An access key id of any cloud (AKIA..., GOOG1..., an S3-compatible store's own):
# printable ASCII without spaces, so it can stand in a header or a query string as it is.
PRINTABLE_ID = re.compile(r"^[\x21-\x7e]{3,128}$")


class StoredSecretRefused(FailedPrecondition):
    """A stored credential that its kind's parser refuses today (the policy changed)."""


class ParsedSecret(Protocol):
    """A kind's parsed secret: typed fields (secret ones ``repr=False``) and metadata."""

    def metadata(self) -> Mapping[str, str]:
        """The non-secret facts GetCredential may show (role ARN, account, SAS expiry ...)."""
        ...


@dataclass(frozen=True)
class ParseContext:
    """What a parser may consult besides the document."""

    tenant: str
    url_policy: UrlPolicy
    # The tenant's ExternalId, issued by the core on first use (confused-deputy rule).
    external_id: Callable[[], str] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Field:
    """One field of a kind's secret JSON: a string, checked before the parser sees it."""

    name: str
    description: str
    required: bool = True
    # Secret fields are documented as such and must never reach metadata.
    secret: bool = False
    max_len: int = 4096
    pattern: re.Pattern[str] | None = None

    def schema(self) -> dict[str, Any]:
        """This field as a JSON Schema property."""
        out: dict[str, Any] = {"type": "string", "maxLength": self.max_len}
        if self.pattern is not None:
            out["pattern"] = self.pattern.pattern
        out["description"] = self.description + (" (secret)" if self.secret else "")
        return out


def bad_field(name: str, problem: str, reason: str = "INVALID_CREDENTIAL") -> InvalidArgument:
    """The error for one secret field: named, never quoted."""
    return InvalidArgument(
        f"secret field {name!r} {problem}", reason=reason, field=f"secret.{name}"
    )


class SecretFields:
    """A secret document whose declared fields passed their declared checks."""

    def __init__(self, document: Mapping[str, Any], spec: KindSpec) -> None:
        declared = {f.name: f for f in spec.fields}
        if not spec.extra_fields:
            unknown = sorted(set(document) - set(declared))
            if unknown:
                shown = ", ".join(repr(str(n)[:40]) for n in unknown[:5])
                raise InvalidArgument(
                    f"unknown secret fields: {shown}", reason="UNKNOWN_FIELD", field="sealed_secret"
                )
        values: dict[str, str] = {}
        for f in spec.fields:
            value = document.get(f.name)
            if value is None or value == "":
                if f.required:
                    raise bad_field(f.name, "is required")
                values[f.name] = ""
                continue
            if not isinstance(value, str):
                raise bad_field(f.name, "must be a string")
            if len(value) > f.max_len:
                raise bad_field(f.name, f"is longer than {f.max_len} characters")
            if f.pattern is not None and not f.pattern.match(value):
                raise bad_field(f.name, "is malformed")
            values[f.name] = value
        self._values = values
        self._document = document

    def __repr__(self) -> str:
        return f"SecretFields(names={sorted(self._values)!r})"

    def __getitem__(self, name: str) -> str:
        """A declared field's value ("" when optional and absent)."""
        return self._values[name]

    @property
    def document(self) -> Mapping[str, Any]:
        """The whole JSON object (for SDKs that want the file as issued)."""
        return self._document


# Registration-time checks that need no network but do need the time (an expired SAS);
# they return warnings to store with the credential.
Admit = Callable[[Any, datetime], tuple[str, ...]]


def _admit_all(secret: Any, now: datetime) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class KindSpec:
    """Everything about one credential kind, declared by the provider that serves it."""

    kind: CredentialKind
    summary: str
    fields: tuple[Field, ...]
    parse: Callable[[SecretFields, ParseContext], ParsedSecret]
    admit: Admit = _admit_all
    # Google's key files carry fields we do not use: accept them rather than make
    # customers edit the file they were issued.
    extra_fields: bool = False

    def read(self, document: Mapping[str, Any], context: ParseContext) -> ParsedSecret:
        """Check the declared fields, then parse: the one way a secret is understood."""
        return self.parse(SecretFields(document, self), context)

    def reopen(self, document: Mapping[str, Any], context: ParseContext) -> ParsedSecret:
        """``read`` for a stored credential: a refusal now is the service's policy having
        changed since registration (an allow-list shrank), not a bad request."""
        try:
            return self.read(document, context)
        except InvalidArgument as exc:
            raise StoredSecretRefused(
                f"the stored credential no longer passes the service's checks: {exc.message}",
                reason=exc.reason,
            ) from None

    def json_schema(self) -> dict[str, Any]:
        """The secret's JSON Schema (documentation and clients)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.kind.value,
            "description": self.summary,
            "type": "object",
            "properties": {f.name: f.schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": self.extra_fields,
        }


def decode_secret(plaintext: bytes) -> tuple[dict[str, Any], bytes]:
    """A sealed plaintext -> (the JSON object, its canonical encoding to store)."""
    if len(plaintext) > MAX_SECRET_BYTES:
        raise InvalidArgument(
            "the secret is too large", reason="SECRET_TOO_LARGE", field="sealed_secret"
        )
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # No position or excerpt: the parser's message would quote the secret.
        data = None
    if not isinstance(data, dict):
        raise InvalidArgument(
            "the sealed secret is not a UTF-8 JSON object",
            reason="SECRET_NOT_JSON",
            field="sealed_secret",
        )
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return data, canonical


__all__ = [
    "MAX_SECRET_BYTES",
    "PRINTABLE_ID",
    "Admit",
    "Field",
    "KindSpec",
    "ParseContext",
    "ParsedSecret",
    "SecretFields",
    "StoredSecretRefused",
    "bad_field",
    "decode_secret",
]
