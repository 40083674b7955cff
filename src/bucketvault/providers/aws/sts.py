"""STS at the provider's boundary: AssumeRole with retries, errors translated.

``StsGateway`` is the seam tests swap: ``BotoSts`` talks to the real (or emulated) STS
and turns botocore errors into the bucketvault errors below; fakes raise them directly.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from bucketvault.errors import Unavailable
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.errors import (
    AssumeRoleDenied,
    SessionDurationRefused,
    StsThrottled,
    StsUnavailable,
    no_identity,
    sts_code,
    sts_error,
)
from bucketvault.providers.egress import Egress
from bucketvault.storehealth import DependencyHealth

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

# The longest session a role grants when its MaxSessionDuration allows it, and the floor
# every role grants (also the cap on role chaining).
FULL_SESSION_SECONDS = 21600
FLOOR_SESSION_SECONDS = 3600

_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)


@dataclass(frozen=True)
class AssumeRoleRequest:
    role_arn: str
    session_name: str
    external_id: str
    duration_seconds: int
    # The inline session policy (scope.session_policy), "" for none.
    policy: str = ""
    source_identity: str = ""
    # Session tags; none is transitive: our sessions never assume further roles.
    tags: tuple[tuple[str, str], ...] = ()


class StsGateway(Protocol):
    def assume_role(self, request: AssumeRoleRequest) -> AwsCredentials:
        """One AssumeRole call (no retries), errors already translated."""
        ...

    def caller_arn(self) -> str:
        """GetCallerIdentity's ARN of the service's own identity."""
        ...


def session_name(tenant: str, credential_id: str) -> str:
    """RoleSessionName naming tenant and credential, in STS's alphabet and length."""
    cred = _SESSION_NAME_BAD.sub("-", credential_id)[:48]
    room = 64 - len("bv..") - len(cred)
    tenant_part = _SESSION_NAME_BAD.sub("-", tenant)[: max(room, 0)]
    return f"bv.{tenant_part}.{cred}"[:64]


def role_arn_of(caller_arn: str) -> str:
    """An assumed-role session ARN -> the role ARN a trust policy can name."""
    match = re.fullmatch(r"arn:([\w-]+):sts::(\d+):assumed-role/([^/]+)/.+", caller_arn)
    if match is None:
        return caller_arn
    partition, account, role = match.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


class BotoSts:
    """StsGateway over a boto3 STS client; the client is built once, lazily."""

    def __init__(
        self,
        session_factory: Callable[[], boto3.Session],
        endpoint: str,
        region: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        egress: Egress,
    ) -> None:
        self._session_factory = session_factory
        self._endpoint = endpoint or None
        self._region = region
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._egress = egress
        self._lock = threading.Lock()
        self._client: Any = None

    def _sts(self) -> Any:
        with self._lock:
            if self._client is None:
                client = self._session_factory().client(
                    "sts",
                    region_name=self._region,
                    endpoint_url=self._endpoint,
                    # Retries are ours (with jitter and our clock), not botocore's.
                    config=Config(
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        # An STS that accepts and never answers costs read_timeout.
                        connect_timeout=self._connect_timeout,
                        read_timeout=self._read_timeout,
                    ),
                )
                self._client = self._egress.guard_boto(client)
            return self._client

    def assume_role(self, request: AssumeRoleRequest) -> AwsCredentials:
        """AssumeRole once; errors become bucketvault errors."""
        kwargs: dict[str, Any] = {
            "RoleArn": request.role_arn,
            "RoleSessionName": request.session_name,
            "DurationSeconds": request.duration_seconds,
        }
        if request.external_id:
            kwargs["ExternalId"] = request.external_id
        if request.policy:
            kwargs["Policy"] = request.policy
        if request.source_identity:
            kwargs["SourceIdentity"] = request.source_identity
        if request.tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in request.tags]
        try:
            response = self._sts().assume_role(**kwargs)
        except ClientError as exc:
            raise sts_error(exc, request.role_arn) from exc
        except NoCredentialsError as exc:
            raise no_identity() from exc
        except BotoCoreError as exc:
            raise StsUnavailable(f"STS could not be reached ({type(exc).__name__})") from exc
        creds = response["Credentials"]
        return AwsCredentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
        )

    def caller_arn(self) -> str:
        """The service identity's ARN."""
        try:
            return str(self._sts().get_caller_identity()["Arn"])
        except ClientError as exc:
            raise StsUnavailable(
                f"STS GetCallerIdentity failed ({sts_code(exc)}): set "
                "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN or fix the service's AWS identity"
            ) from exc
        except NoCredentialsError as exc:
            raise no_identity() from exc
        except BotoCoreError as exc:
            raise StsUnavailable(f"STS could not be reached ({type(exc).__name__})") from exc


@dataclass(frozen=True)
class Backoff:
    """Retry policy for throttling and outages: capped exponential with full jitter,
    inside a total budget: a retry starts only if it could end within budget_seconds of
    the first attempt's start, taking as long as the attempt that just failed (a fast
    refusal is retried; a stalled read is not, and the caller hears at once)."""

    attempts: int = 4
    base_seconds: float = 0.2
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    budget_seconds: float = 8.0
    monotonic: Callable[[], float] = time.monotonic

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt))."""
        return self.rng() * min(self.cap_seconds, self.base_seconds * 2.0**attempt)


T = TypeVar("T")


class ObservedSts:
    """A gateway that tells health whether STS answers: an outage (StsUnavailable: no
    answer in the timeout, unreachable, a 5xx) marks it down, any answer marks it up."""

    def __init__(self, gateway: StsGateway, health: DependencyHealth) -> None:
        self._gateway = gateway
        self._health = health

    def assume_role(self, request: AssumeRoleRequest) -> AwsCredentials:
        return self._observed(lambda: self._gateway.assume_role(request))

    def caller_arn(self) -> str:
        return self._observed(self._gateway.caller_arn)

    def _observed(self, call: Callable[[], T]) -> T:
        try:
            value = call()
        except StsUnavailable as exc:
            self._health.failed(exc.reason)
            raise
        except Exception:
            self._health.answered()  # throttled or refused: an answer all the same
            raise
        self._health.answered()
        return value


def assume_role_with_retry(
    gateway: StsGateway, request: AssumeRoleRequest, backoff: Backoff
) -> AwsCredentials:
    """AssumeRole, retrying throttling and outages with backoff and jitter, in budget."""
    started = backoff.monotonic()
    for attempt in range(backoff.attempts):
        tried = backoff.monotonic()
        try:
            return gateway.assume_role(request)
        except Unavailable as exc:
            if attempt + 1 == backoff.attempts:
                raise
            pause = backoff.delay(attempt)
            ended = backoff.monotonic()
            if ended - started + pause + (ended - tried) > backoff.budget_seconds:
                log.warning(
                    "AssumeRole %s failed (%s) after %.1fs; no retry fits the %.1fs budget",
                    request.role_arn,
                    exc.reason,
                    ended - started,
                    backoff.budget_seconds,
                )
                raise
            log.warning(
                "AssumeRole %s failed (%s), retrying in %.2fs", request.role_arn, exc.reason, pause
            )
            backoff.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "FLOOR_SESSION_SECONDS",
    "FULL_SESSION_SECONDS",
    "AssumeRoleDenied",
    "AssumeRoleRequest",
    "Backoff",
    "BotoSts",
    "ObservedSts",
    "SessionDurationRefused",
    "StsGateway",
    "StsThrottled",
    "StsUnavailable",
    "assume_role_with_retry",
    "role_arn_of",
    "session_name",
]
