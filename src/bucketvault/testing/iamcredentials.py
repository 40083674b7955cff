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
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from bucketvault.clock import Clock, SystemClock
from bucketvault.testing.loopback import LoopbackServer, StandInHandler

_PATH = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):(signBlob|generateAccessToken)$")
_LIFETIME = re.compile(r"^(\d{1,5})s$")
_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}


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
        self.calls: list[IamCall] = []
        # Impersonated access token -> the account it was minted for.
        self.minted: dict[str, str] = {}
        stand_in = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, body = stand_in.answer(
                    self.path, self.headers.get("Authorization", ""), raw
                )
                self.reply_json(status, body)

        self._server = LoopbackServer(Handler)
        self.url = self._server.url

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

    def reset(self) -> None:
        """Forget calls and failures (accounts stay)."""
        with self._lock:
            self._failing = None
            self.calls.clear()

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
        return 200, {"accessToken": token, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def close(self) -> None:
        """Stop serving."""
        self._server.close()


def _error(code: int, message: str) -> dict[str, Any]:
    # Google's error shape: {"error": {"code", "message", "status"}}.
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


__all__ = ["IamCall", "IamCredentialsStandIn"]
