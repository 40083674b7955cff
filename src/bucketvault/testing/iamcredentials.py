"""A local IAM Service Account Credentials API on 127.0.0.1, speaking its JSON wire protocol.

POST /v1/projects/-/serviceAccounts/{email}:signBlob            {"payload": b64}
    -> {"keyId", "signedBlob": b64}  (PKCS#1 v1.5 / SHA-256 with the account's key)
POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken {"scope": [...], "lifetime"}
    -> {"accessToken", "expireTime": "YYYY-MM-DDTHH:MM:SSZ"}

The caller's bearer token must be one ``accepts`` approves (a token the service's own
identity got from its token endpoint), else 401. Accounts are added by tests, each with
an RSA key made at test time (``public_key`` for an independent verifier); an account not
added answers 403, as Google does for ``projects/-`` when the caller holds no grant.
``fail(status)`` makes the next calls answer that status (403, 429, 503 ...).

It also speaks Google STS's token exchange (Credential Access Boundaries), at
``sts_url`` (``{url}/v1/token``), as ``google.auth.downscoped`` calls it:

POST /v1/token  form: grant_type=urn:ietf:params:oauth:grant-type:token-exchange,
    subject_token, subject_token_type and requested_token_type (...:token-type:access_token),
    options=<URL-encoded JSON {"accessBoundary": {"accessBoundaryRules": [...]}}>
    -> {"access_token", "issued_token_type", "token_type": "Bearer", "expires_in"}

The subject token must be one generateAccessToken minted here (else 400 invalid_grant,
as for an expired token); each exchange is recorded (``exchanges``) with its boundary
decoded, and the token it issued maps to (account, boundary) in ``downscoped``.
``fail_sts(status)`` scripts STS errors ({"error", "error_description"}, OAuth's shape).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from bucketvault.clock import Clock, SystemClock
from bucketvault.testing.loopback import LoopbackServer, StandInHandler

_PATH = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):(signBlob|generateAccessToken)$")
_LIFETIME = re.compile(r"^(\d{1,5})s$")
_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}


_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_OAUTH_ERROR = {400: "invalid_request", 401: "invalid_client", 403: "unauthorized_client"}


@dataclass(frozen=True)
class StsExchange:
    """One token exchange STS answered: the form, the decoded boundary, what it issued."""

    form: dict[str, str] = field(repr=False)
    boundary: dict[str, Any]
    status: int
    # The impersonated account whose token was the subject ("" when unknown).
    account: str = ""
    issued: str = field(default="", repr=False)

    @property
    def rules(self) -> list[dict[str, Any]]:
        """accessBoundary.accessBoundaryRules ([] when absent)."""
        inner = self.boundary.get("accessBoundary", {})
        rules = inner.get("accessBoundaryRules", []) if isinstance(inner, dict) else []
        return rules if isinstance(rules, list) else []


@dataclass(frozen=True)
class IamCall:
    """One call the stand-in answered: which method, for which account, with what body."""

    method: str
    account: str
    bearer: str = field(repr=False)
    body: dict[str, Any] = field(repr=False)
    status: int


class IamCredentialsStandIn:
    """The stand-in server; thread-safe; ``close()`` stops it."""

    def __init__(self, accepts: Callable[[str], bool], clock: Clock | None = None) -> None:
        self._accepts = accepts
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, RSAPrivateKey]] = {}
        self._failing: int | None = None
        self._sts_failing: int | None = None
        self.calls: list[IamCall] = []
        # Impersonated access token -> the account it was minted for.
        self.minted: dict[str, str] = {}
        # Its expiry (what a downscoped token may not outlive).
        self._minted_until: dict[str, datetime] = {}
        self.exchanges: list[StsExchange] = []
        # Downscoped access token -> (account, boundary).
        self.downscoped: dict[str, tuple[str, dict[str, Any]]] = {}
        stand_in = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path.split("?", 1)[0] == "/v1/token":
                    status, body = stand_in.exchange(raw)
                else:
                    status, body = stand_in.answer(
                        self.path, self.headers.get("Authorization", ""), raw
                    )
                self.reply_json(status, body)

        self._server = LoopbackServer(Handler)
        self.url = self._server.url
        self.sts_url = f"{self.url}/v1/token"

    def add_account(self, email: str) -> RSAPrivateKey:
        """Let the caller act as email; returns the account's (test-time) private key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self._keys[email] = (secrets.token_hex(20), key)
        return key

    def public_key(self, email: str) -> RSAPublicKey:
        """What an independent verifier checks the account's signatures with."""
        with self._lock:
            return self._keys[email][1].public_key()

    def private_key(self, email: str) -> RSAPrivateKey:
        """The account's key itself, for differential tests against a key-file signer."""
        with self._lock:
            return self._keys[email][1]

    def fail(self, status: int | None) -> None:
        """Answer every call with status from now on (None: answer normally again)."""
        with self._lock:
            self._failing = status

    def fail_sts(self, status: int | None) -> None:
        """Answer every token exchange with status from now on (None: normally again)."""
        with self._lock:
            self._sts_failing = status

    def reset(self) -> None:
        """Forget calls, exchanges and failures (accounts and minted tokens stay)."""
        with self._lock:
            self._failing = None
            self._sts_failing = None
            self.calls.clear()
            self.exchanges.clear()

    def exchange(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one STS token exchange (form-encoded raw)."""
        try:
            pairs = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
            form = {k: v[0] for k, v in pairs.items()}
        except (UnicodeDecodeError, ValueError):
            form = {}
        try:
            boundary = json.loads(unquote(form.get("options", ""))) if "options" in form else {}
        except ValueError:
            boundary = None
        with self._lock:
            account = self.minted.get(form.get("subject_token", ""), "")
            until = self._minted_until.get(form.get("subject_token", ""))
            failing = self._sts_failing
        status, reply = self._exchange(form, boundary, until, failing)
        issued = str(reply.get("access_token", ""))
        record = StsExchange(
            form, boundary if isinstance(boundary, dict) else {}, status, account, issued
        )
        with self._lock:
            self.exchanges.append(record)
            if issued:
                self.downscoped[issued] = (account, record.boundary)
        return status, reply

    def _exchange(
        self, form: dict[str, str], boundary: Any, until: datetime | None, failing: int | None
    ) -> tuple[int, dict[str, Any]]:
        if failing is not None:
            return failing, _oauth_error(failing, "as told")
        if form.get("grant_type") != _TOKEN_EXCHANGE:
            return 400, _oauth_error(
                400, "grant_type must be token-exchange", "unsupported_grant_type"
            )
        for name in ("subject_token_type", "requested_token_type"):
            if form.get(name) != _ACCESS_TOKEN_TYPE:
                return 400, _oauth_error(400, f"{name} must be an access token")
        if until is None or until <= self._clock.now():
            return 400, _oauth_error(400, "subject_token is invalid or expired", "invalid_grant")
        rules = (
            boundary.get("accessBoundary", {}).get("accessBoundaryRules")
            if isinstance(boundary, dict) and isinstance(boundary.get("accessBoundary"), dict)
            else None
        )
        if not isinstance(rules, list) or not 1 <= len(rules) <= 10:
            return 400, _oauth_error(400, "options must hold 1 to 10 access boundary rules")
        for rule in rules:
            if not _valid_rule(rule):
                return 400, _oauth_error(400, "malformed access boundary rule")
        token = "ya29.down-" + secrets.token_urlsafe(16)
        seconds = int((until - self._clock.now()).total_seconds())
        return 200, {
            "access_token": token,
            "issued_token_type": _ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": seconds,
        }

    def count(self, method: str) -> int:
        """How many calls of method were answered."""
        with self._lock:
            return sum(1 for c in self.calls if c.method == method)

    def answer(self, path: str, authorization: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one request."""
        match = _PATH.match(path.split("?", 1)[0])
        if match is None:
            return 404, _error(404, "unknown method")
        account, method = match.group(1), match.group(2)
        bearer = (
            authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        )
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        status, reply = self._answer(account, method, bearer, body)
        with self._lock:
            self.calls.append(IamCall(method, account, bearer, body or {}, status))
        return status, reply

    def _answer(
        self, account: str, method: str, bearer: str, body: Any
    ) -> tuple[int, dict[str, Any]]:
        if not bearer or not self._accepts(bearer):
            return 401, _error(401, "Request had invalid authentication credentials.")
        with self._lock:
            failing = self._failing
            held = self._keys.get(account)
        if failing is not None:
            return failing, _error(failing, "as told")
        if held is None:
            return 403, _error(403, "Permission 'iam.serviceAccounts.getAccessToken' denied")
        if not isinstance(body, dict):
            return 400, _error(400, "Invalid JSON payload received.")
        key_id, key = held
        if method == "signBlob":
            try:
                payload = base64.b64decode(str(body["payload"]), validate=True)
            except (KeyError, binascii.Error):
                return 400, _error(400, "payload must be base64")
            signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
            return 200, {"keyId": key_id, "signedBlob": base64.b64encode(signature).decode()}
        scopes = body.get("scope")
        lifetime = _LIFETIME.match(str(body.get("lifetime", "3600s")))
        if not isinstance(scopes, list) or not scopes or lifetime is None:
            return 400, _error(400, "scope and lifetime are required")
        seconds = int(lifetime.group(1))
        if not 1 <= seconds <= 3600:
            return 400, _error(400, "lifetime must be at most 3600s")
        token = "ya29.imp-" + secrets.token_urlsafe(16)
        expires = self._clock.now() + timedelta(seconds=seconds)
        with self._lock:
            self.minted[token] = account
            self._minted_until[token] = expires
        return 200, {"accessToken": token, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def close(self) -> None:
        """Stop serving."""
        self._server.close()


def _valid_rule(rule: Any) -> bool:
    if not isinstance(rule, dict):
        return False
    resource, permissions = rule.get("availableResource"), rule.get("availablePermissions")
    condition = rule.get("availabilityCondition", {"expression": "true"})
    return (
        isinstance(resource, str)
        and resource.startswith("//storage.googleapis.com/projects/_/buckets/")
        and isinstance(permissions, list)
        and bool(permissions)
        and all(isinstance(p, str) and p.startswith("inRole:") for p in permissions)
        and isinstance(condition, dict)
        and isinstance(condition.get("expression"), str)
    )


def _oauth_error(code: int, description: str, error: str = "") -> dict[str, Any]:
    # STS answers errors as OAuth 2.0 does: {"error", "error_description"}.
    return {
        "error": error or _OAUTH_ERROR.get(code, "temporarily_unavailable"),
        "error_description": description,
    }


def _error(code: int, message: str) -> dict[str, Any]:
    # Google's error shape: {"error": {"code", "message", "status"}}.
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


__all__ = ["IamCall", "IamCredentialsStandIn", "StsExchange"]
