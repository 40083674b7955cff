"""A recording AWS STS stand-in on 127.0.0.1, speaking the real Query/XML wire protocol.

moto accepts AssumeRole's Policy, SourceIdentity and Tags but enforces none of them, and
a proxy in front of it sees only form bodies. ``RecordingSts`` answers ``AssumeRole``
(form-encoded POST, as botocore sends it) with the documented XML and records each call,
decoded (``Tags.member.N.Key/Value`` -> a dict), so tests can assert the session policy
and the attribution; ``refuse`` scripts error answers (AccessDenied, PackedPolicyTooLarge,
Throttling ...) from a call's parameters. Point ``AWS_ENDPOINT_URL_STS`` at ``url``.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from bucketvault.testing.loopback import LoopbackServer, StandInHandler

_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_TAG = re.compile(r"^Tags\.member\.(\d+)\.(Key|Value)$")


@dataclass(frozen=True)
class StsCall:
    """One AssumeRole request as STS received it."""

    form: dict[str, str]
    tags: dict[str, str]

    @property
    def policy(self) -> dict[str, Any]:
        """The inline session policy, parsed ({} when none was sent)."""
        text = self.form.get("Policy", "")
        return json.loads(text) if text else {}

    def __getitem__(self, name: str) -> str:
        return self.form.get(name, "")


# form -> None (answer with credentials) or (HTTP status, error code, message).
Refuse = Callable[[dict[str, str]], tuple[int, str, str] | None]


def error_xml(code: str, message: str) -> bytes:
    """STS's ErrorResponse document."""
    return (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{html.escape(code)}'
        f"</Code><Message>{html.escape(message)}</Message></Error>"
        "<RequestId>rec</RequestId></ErrorResponse>"
    ).encode()


class RecordingSts(LoopbackServer):
    """AssumeRole answered with fresh credentials (ASIARECORDED00000001, ...), recorded."""

    def __init__(self, refuse: Refuse | None = None) -> None:
        self.calls: list[StsCall] = []
        self.refuse = refuse
        self._lock = threading.Lock()
        sts = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                status, payload = sts._answer(form)
                self.reply(status, payload, "text/xml")

        super().__init__(Handler)

    def _answer(self, form: dict[str, str]) -> tuple[int, bytes]:
        if form.get("Action") != "AssumeRole":
            return 400, error_xml("InvalidAction", f"not served: {form.get('Action', '')}")
        pairs: dict[str, dict[str, str]] = {}
        for name, value in form.items():
            match = _TAG.match(name)
            if match:
                pairs.setdefault(match.group(1), {})[match.group(2)] = value
        tags = {p["Key"]: p.get("Value", "") for _, p in sorted(pairs.items()) if "Key" in p}
        with self._lock:
            self.calls.append(StsCall(form, tags))
            n = len(self.calls)
        refused = self.refuse(form) if self.refuse is not None else None
        if refused is not None:
            status, code, message = refused
            return status, error_xml(code, message)
        seconds = int(form.get("DurationSeconds", "3600"))
        expires = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        role = html.escape(form.get("RoleArn", ""))
        name = html.escape(form.get("RoleSessionName", ""))
        source = form.get("SourceIdentity", "")
        source_xml = f"<SourceIdentity>{html.escape(source)}</SourceIdentity>" if source else ""
        return 200, (
            f'<AssumeRoleResponse xmlns="{_NS}"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>ASIARECORDED{n:08d}</AccessKeyId>"
            f"<SecretAccessKey>recorded-secret-{n}</SecretAccessKey>"
            f"<SessionToken>recorded-token-{n}</SessionToken><Expiration>{expires}</Expiration>"
            f"</Credentials><AssumedRoleUser><AssumedRoleId>AROARECORDED:{name}</AssumedRoleId>"
            f"<Arn>{role}/{name}</Arn></AssumedRoleUser><PackedPolicySize>7</PackedPolicySize>"
            f"{source_xml}</AssumeRoleResult>"
            "<ResponseMetadata><RequestId>rec</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ).encode()

    def assume_calls(self) -> list[StsCall]:
        """Every AssumeRole received, in order."""
        with self._lock:
            return list(self.calls)

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        with self._lock:
            self.calls.clear()


__all__ = ["RecordingSts", "Refuse", "StsCall", "error_xml"]
