"""The AWS provider: AWS_ROLE (assumed with STS) and S3_ACCESS_KEY credentials.

Session refresh windows (6-hour sessions): URLs are capped at session expiry minus
the skew margin, and normal URL TTLs are up to an hour. The mandatory window starts
when less than 1 h + skew + 5 min remain, so a blocking refresh happens before a
1-hour URL would be cut short; the advisory window starts 30 minutes earlier, so in
practice the refresh happens in the background and no caller ever blocks. Short
sessions (a role capped at 1 hour) scale both windows down to fractions of the
session: those URLs are capped, and the credential carries a warning saying how to
fix the role.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

import boto3

from bucketvault.clock import Clock
from bucketvault.errors import FailedPrecondition
from bucketvault.models import (
    Credential,
    CredentialKind,
    Mount,
    Preparation,
    RegistrationContext,
)
from bucketvault.providers.aws import listing
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.handles import AwsHandle
from bucketvault.providers.aws.kinds import AWS_ROLE, KINDS, AccessKeySecret, RoleSecret
from bucketvault.providers.aws.scope import DENY_ALL_POLICY, TAG_TENANT, sts_name, tag_value
from bucketvault.providers.aws.sessions import SERVICE_CALLER, RoleSessions, StaticKey
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.aws.sigv4 import MAX_EXPIRES_SECONDS
from bucketvault.providers.aws.sts import (
    FLOOR_SESSION_SECONDS,
    FULL_SESSION_SECONDS,
    AssumeRoleRequest,
    Backoff,
    BotoSts,
    ObservedSts,
    SessionDurationRefused,
    StsGateway,
    assume_role_with_retry,
    role_arn_of,
    session_name,
)
from bucketvault.providers.base import TrustPolicy
from bucketvault.providers.egress import Egress
from bucketvault.providers.kinds import KindSpec, ParsedSecret
from bucketvault.providers.refresh import RefreshWindows, Spawn
from bucketvault.providers.rules import SESSION_SKEW
from bucketvault.storehealth import DependencyHealth
from bucketvault.urlpolicy import UrlPolicy

log = logging.getLogger(__name__)

SESSION_WINDOWS = RefreshWindows(
    advisory=timedelta(minutes=100),
    mandatory=timedelta(minutes=70),
    retry_after=timedelta(seconds=30),
    usable_margin=SESSION_SKEW,
)

# Credential metadata keys this provider adds at registration.
META_SESSION_SECONDS = "session_duration_seconds"
META_SESSION_LIMIT = "session_limit"
META_EXTERNAL_ID = "external_id"
LIMIT_ROLE_MAX = "ROLE_MAX_SESSION_DURATION"
LIMIT_CHAINING = "ROLE_CHAINING"


def _session_warning(limit: str, role_arn: str) -> str:
    if limit == LIMIT_CHAINING:
        return (
            f"AssumeRole on {role_arn} is limited to 1-hour sessions because bucketvault's own "
            "identity is itself an assumed role (role chaining): run bucketvault with a "
            "non-chained identity (instance profile, web identity or IAM user) to get 6-hour "
            "sessions; meanwhile signed URLs are capped to the shorter sessions"
        )
    return (
        f"role {role_arn} grants sessions of only 1 hour: raise the role's MaxSessionDuration "
        "to 21600 seconds (aws iam update-role --role-name <role> --max-session-duration 21600)"
        "; meanwhile signed URLs are capped to the shorter sessions"
    )


class AwsProvider:
    """CloudProvider for AWS roles and S3-compatible access keys."""

    name = "aws"
    kinds: Mapping[CredentialKind, KindSpec] = KINDS
    max_url_seconds = MAX_EXPIRES_SECONDS

    def __init__(
        self,
        settings: AwsSettings,
        clock: Clock,
        url_policy: UrlPolicy,
        *,
        sts: StsGateway | None = None,
        backoff: Backoff | None = None,
        windows: RefreshWindows | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._url_policy = url_policy
        # Every STS call passes the health observer: its outages show in grpc.health.
        self._sts_health = DependencyHealth("sts")
        self._egress = Egress(url_policy)
        self._sts: StsGateway = ObservedSts(
            sts
            or BotoSts(
                self._service_session,
                settings.sts_endpoint,
                settings.region,
                connect_timeout=settings.sts_connect_timeout_seconds,
                read_timeout=settings.sts_read_timeout_seconds,
                egress=self._egress,
            ),
            self._sts_health,
        )
        self._backoff = backoff or Backoff(budget_seconds=settings.sts_budget_seconds)
        self._windows = windows or SESSION_WINDOWS
        self._spawn = spawn
        self._principal = ""
        self._principal_lock = threading.Lock()

    def dependencies(self) -> Sequence[DependencyHealth]:
        """STS: whether it answered the last AssumeRole (storehealth.HasDependencies)."""
        return (self._sts_health,)

    def _service_session(self) -> boto3.Session:
        s = self._settings
        if s.access_key_id and s.secret_access_key:
            return boto3.Session(
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=s.secret_access_key,
                aws_session_token=s.session_token or None,
                region_name=s.region,
            )
        # The standard chain: environment, config files, web identity, instance profile.
        return boto3.Session(profile_name=s.profile or None, region_name=s.region)

    def service_principal_arn(self) -> str:
        """The principal customers' trust policies must name (config, else STS)."""
        with self._principal_lock:
            if not self._principal:
                self._principal = self._settings.service_principal_arn or role_arn_of(
                    self._sts.caller_arn()
                )
            return self._principal

    def trust_policy(self, external_id: str) -> TrustPolicy:
        """The role trust policy to paste: our principal, the tenant's ExternalId."""
        arn = self.service_principal_arn()
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": arn},
                    # Tags and SourceIdentity attribute every session to a tenant, a mount
                    # and a caller; STS refuses them unless the trust policy allows both.
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ],
        }
        return TrustPolicy(external_id, arn, json.dumps(policy, indent=2))

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        """AWS_ROLE: assume the role once, tagged and attributed as every session will be,
        to prove the trust policy; S3 keys: nothing."""
        if not isinstance(secret, RoleSecret):
            return Preparation()
        request = AssumeRoleRequest(
            role_arn=secret.role_arn,
            session_name=session_name(context.tenant, context.credential_id),
            external_id=secret.external_id,
            duration_seconds=FULL_SESSION_SECONDS,
            # The proof needs no rights: its session may do nothing at all.
            policy=DENY_ALL_POLICY,
            source_identity=sts_name(context.caller or SERVICE_CALLER),
            tags=((TAG_TENANT, tag_value(context.tenant)),),
        )
        metadata = {META_EXTERNAL_ID: secret.external_id}
        try:
            assume_role_with_retry(self._sts, request, self._backoff)
        except SessionDurationRefused as exc:
            limit = LIMIT_CHAINING if exc.role_chaining else LIMIT_ROLE_MAX
            # 3600 s is the floor every role grants, and the role-chaining cap.
            assume_role_with_retry(
                self._sts, replace(request, duration_seconds=FLOOR_SESSION_SECONDS), self._backoff
            )
            metadata[META_SESSION_SECONDS] = str(FLOOR_SESSION_SECONDS)
            metadata[META_SESSION_LIMIT] = limit
            return Preparation(metadata, (_session_warning(limit, secret.role_arn),))
        metadata[META_SESSION_SECONDS] = str(FULL_SESSION_SECONDS)
        return Preparation(metadata)

    def admit_mount(self, credential: Credential, mount: Mount) -> None:
        """AWS_ROLE: the mount's session policy and tags fit STS's limits and the role lets
        itself be assumed with them (one real AssumeRole); S3 keys: any mount."""
        if credential.kind != AWS_ROLE:
            return
        meta = credential.metadata
        # Everything AssumeRole needs is in the record: no secret is decrypted for this.
        role = RoleSecret(
            meta.get("role_arn", ""), meta.get("account_id", ""), meta.get(META_EXTERNAL_ID, "")
        )
        base, assume = self._role_assumer(credential, role)
        RoleSessions(base, credential.tenant, assume, self._clock, self._windows).admit_mount(mount)

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Nothing time-dependent: the session-length warning is stored at registration."""
        return ()

    def open(self, credential: Credential, secret: ParsedSecret) -> AwsHandle:
        """A handle holding the key (S3_ACCESS_KEY) or a session cache (AWS_ROLE)."""
        clients = listing.S3Clients(_client_session, self._egress, self._settings)
        if isinstance(secret, AccessKeySecret):
            static = AwsCredentials(secret.access_key_id, secret.secret_access_key)
            endpoint = secret.endpoint_url or self._settings.s3_endpoint
            return AwsHandle(StaticKey(static), clients, endpoint, secret.region)
        if not isinstance(secret, RoleSecret):
            raise FailedPrecondition(
                f"the aws provider does not serve {credential.kind.value}",
                reason="WRONG_PROVIDER",
            )
        base, assume = self._role_assumer(credential, secret)
        sessions = RoleSessions(
            base, credential.tenant, assume, self._clock, self._windows, self._spawn
        )
        return AwsHandle(sessions, clients, self._settings.s3_endpoint, "")

    def _role_assumer(
        self, credential: Credential, secret: RoleSecret
    ) -> tuple[AssumeRoleRequest, Callable[[AssumeRoleRequest], AwsCredentials]]:
        """The credential's AssumeRole parameters, and AssumeRole with retries and the
        session-length fallback shared by every scope's sessions."""
        meta: Mapping[str, str] = credential.metadata
        seconds = int(meta.get(META_SESSION_SECONDS, "") or FULL_SESSION_SECONDS)
        base = AssumeRoleRequest(
            role_arn=secret.role_arn,
            session_name=session_name(credential.tenant, credential.credential_id),
            external_id=meta.get(META_EXTERNAL_ID, "") or secret.external_id,
            duration_seconds=seconds,
        )
        state = {"seconds": seconds}

        def assume(request: AssumeRoleRequest) -> AwsCredentials:
            # Admission asks for the floor; sessions for the credential's length, once
            # the role refused it for the floor.
            wanted = min(request.duration_seconds, state["seconds"])
            try:
                return assume_role_with_retry(
                    self._sts, replace(request, duration_seconds=wanted), self._backoff
                )
            except SessionDurationRefused:
                if wanted <= FLOOR_SESSION_SECONDS:
                    raise
                # The role's MaxSessionDuration was lowered after registration.
                log.warning("role %s refused %ss sessions; using 3600s", secret.role_arn, wanted)
                state["seconds"] = FLOOR_SESSION_SECONDS
                shorter = replace(request, duration_seconds=FLOOR_SESSION_SECONDS)
                return assume_role_with_retry(self._sts, shorter, self._backoff)

        return base, assume


def _client_session(credentials: AwsCredentials) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token or None,
    )


__all__ = ["SESSION_WINDOWS", "AwsHandle", "AwsProvider"]
