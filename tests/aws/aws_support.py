"""Fakes for the AWS provider tests: a recording STS proxy, scripted STS and S3, builders."""

from __future__ import annotations

import html
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import boto3
import botocore.auth
import pytest
from hypothesis import strategies as st

from bucketvault.client import BucketVaultClient
from bucketvault.clock import Clock
from bucketvault.errors import BucketVaultError
from bucketvault.models import (
    Credential,
    CredentialKind,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
)
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.sts import AssumeRoleRequest, SessionDurationRefused
from bucketvault.testing.emulators import RunningEmulator
from bucketvault.testing.loopback import LoopbackServer, StandInHandler
from bucketvault.testing.ports import free_port  # noqa: F401 (re-exported for the tests)
from bucketvault.testing.providers import RawSecret

# A started moto or LocalStack (bucketvault.testing.emulators launches both).
Peer = RunningEmulator
ROLE_ARN = "arn:aws:iam::123456789012:role/bucketvault-reader"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingProxy(LoopbackServer):
    """Forwards every request to a peer and records the form bodies it carried."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[dict[str, str]] = []
        self.responses: list[bytes] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                with proxy._lock:
                    proxy.requests.append(form)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, payload, ctype = (
                            resp.status,
                            resp.read(),
                            resp.headers.get("Content-Type", ""),
                        )
                except urllib.error.HTTPError as err:
                    status, payload, ctype = (
                        err.code,
                        err.read(),
                        err.headers.get("Content-Type", ""),
                    )
                with proxy._lock:
                    proxy.responses.append(payload)
                self.reply(status, payload, ctype or "text/xml")

        super().__init__(Handler)

    def actions(self, action: str) -> list[dict[str, str]]:
        with self._lock:
            return [r for r in self.requests if r.get("Action") == action]

    def last_session(self) -> tuple[str, str, str]:
        """(access key, secret, token) of the last AssumeRole answer that passed through."""
        with self._lock:
            answers = [r for r in self.responses if b"<AssumeRoleResult>" in r]
        text = answers[-1].decode()

        def tag(name: str) -> str:
            return text.split(f"<{name}>", 1)[1].split(f"</{name}>", 1)[0]

        return tag("AccessKeyId"), tag("SecretAccessKey"), html.unescape(tag("SessionToken"))

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.responses.clear()


def sts_error(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>1</RequestId></ErrorResponse>"
    ).encode()


def sts_session(seconds: int) -> bytes:
    expires = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
        "<Credentials><AccessKeyId>ASIASCRIPTED</AccessKeyId>"
        "<SecretAccessKey>scripted-secret</SecretAccessKey>"
        f"<SessionToken>scripted-token</SessionToken><Expiration>{expires}</Expiration>"
        "</Credentials><AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId>"
        f"<Arn>{ROLE_ARN}</Arn></AssumedRoleUser></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"
    ).encode()


class ScriptedSts(LoopbackServer):
    """A local HTTP STS whose answers a test scripts: form -> (status, XML body)."""

    def __init__(self, answer: Callable[[dict[str, str]], tuple[int, bytes]]) -> None:
        self.forms: list[dict[str, str]] = []
        sts = self

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                sts.forms.append(form)
                status, payload = answer(form)
                self.reply(status, payload, "text/xml")

        super().__init__(Handler)


class ScriptedS3(LoopbackServer):
    """A local HTTP S3 answering each bucket (first path segment) with a scripted error."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        class Handler(StandInHandler):
            def _answer(self) -> None:
                bucket = self.path.lstrip("/").split("/")[0].split("?")[0]
                status, headers, body = answers.get(bucket, (404, {}, b""))
                self.reply(status, body, headers=headers)

            do_GET = do_HEAD = _answer

        super().__init__(Handler)


def s3_error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


@dataclass
class FakeSts:
    """StsGateway fake: sessions relative to the injected clock; scripted failures."""

    clock: Clock
    lifetime: timedelta = timedelta(hours=6)
    # Exceptions to raise, one per call, before answering normally.
    failures: list[BucketVaultError] = field(default_factory=list)
    # When set, every call raises it (an outage).
    down: BucketVaultError | None = None
    calls: list[AssumeRoleRequest] = field(default_factory=list)
    gate: threading.Event | None = None
    # The role's MaxSessionDuration; longer requests get a ValidationError.
    max_duration: int = 43200
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def assume_role(self, request: AssumeRoleRequest) -> AwsCredentials:
        if self.gate is not None:
            self.gate.wait(10)
        with self._lock:
            self.calls.append(request)
            n = len(self.calls)
            if self.down is not None:
                raise self.down
            if self.failures:
                raise self.failures.pop(0)
            if request.duration_seconds > self.max_duration:
                raise SessionDurationRefused(
                    "DurationSeconds exceeds the MaxSessionDuration", role_chaining=False
                )
        seconds = min(request.duration_seconds, self.lifetime.total_seconds())
        return AwsCredentials(
            access_key_id=f"ASIAFAKE{n:08d}",
            secret_access_key=f"secret-{n}",
            session_token=f"token-{n}",
            expiration=self.clock.now() + timedelta(seconds=seconds),
        )

    def caller_arn(self) -> str:
        return "arn:aws:sts::111122223333:assumed-role/bucketvault-service/i-0abc"


def credential(
    kind: CredentialKind, metadata: dict[str, str] | None = None, cid: str = "cred-1"
) -> Credential:
    return Credential(
        credential_id=cid,
        tenant="acme",
        display_name="test",
        kind=kind,
        state=CredentialState.ACTIVE,
        fingerprint="fp",
        metadata=metadata or {},
        warnings=(),
        created_at=EPOCH,
        created_by="test",
    )


def secret(kind: CredentialKind, **fields: str) -> RawSecret:
    return RawSecret(kind, dict(fields))


def mount(
    bucket: str,
    *,
    prefix: str = "",
    region: str = "",
    endpoint: str = "",
    mount_id: str = "m-1",
    max_ttl: int = 3600,
) -> Mount:
    return Mount(
        mount_id=mount_id,
        tenant="acme",
        name="m",
        bucket=bucket,
        prefix=prefix,
        region=region,
        endpoint=endpoint,
        credential_id="cred-1",
        policy=MountPolicy(max_ttl, frozenset(Method)),
        version=1,
        created_at=EPOCH,
        updated_at=EPOCH,
    )


def no_sleep() -> tuple[list[float], Callable[[float], None]]:
    slept: list[float] = []
    return slept, slept.append


key_text = st.lists(
    st.one_of(
        st.sampled_from([*"ab/ +=%~-_.!*'()&$@:,;?#[]\"<>^`{|}", "é", "日本", "😀", "//"]),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF),
    ),
    min_size=1,
    max_size=30,
).map("".join)


@contextmanager
def frozen_botocore(when: datetime) -> Iterator[None]:
    """Freeze botocore's signing clock (botocore's, not ours: allowed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            botocore.auth,
            "get_current_datetime",
            lambda remove_tzinfo=True: when.replace(tzinfo=None),
        )
        yield


def s3_bucket(url: str, bucket: str, objects: dict[str, bytes]) -> None:
    """Make bucket on the S3 emulator at url, holding objects."""
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def s3_key_doc(url: str, access_key: str) -> dict[str, str]:
    """An S3_ACCESS_KEY secret for the emulator at url (it checks no secret)."""
    return {"access_key_id": access_key, "secret_access_key": "s", "endpoint_url": url}


def s3_key_mount(
    c: BucketVaultClient,
    url: str,
    bucket: str,
    access_key: str,
    *,
    tenant: str = "acme",
    name: str = "",
    max_ttl_seconds: int = 0,
) -> tuple[str, str]:
    """An S3_ACCESS_KEY credential and a mount of bucket's img/ on it: (mount id, cred id)."""
    cred = c.register_credential(tenant, "S3_ACCESS_KEY", s3_key_doc(url, access_key))
    mount = c.create_mount(
        tenant,
        name=name or f"m-{secrets.token_hex(3)}",
        bucket=bucket,
        prefix="img/",
        credential_id=cred.credential_id,
        region="us-east-1",
        max_ttl_seconds=max_ttl_seconds,
    )
    return str(mount.mount_id), str(cred.credential_id)
