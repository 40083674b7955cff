"""The AWS provider: AWS_ROLE (assumed with STS) and S3_ACCESS_KEY credentials."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import boto3

from bucketvault.clock import Clock
from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from bucketvault.models import (
    CheckResult,
    Credential,
    CredentialKind,
    ListEntry,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountState,
    Preparation,
    RegistrationContext,
    SecretDocument,
    SignedUrl,
    SignOptions,
)
from bucketvault.objectkeys import check_key
from bucketvault.providers.aws import s3
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.endpoints import aws_target, custom_target
from bucketvault.providers.aws.sessions import SKEW, RefreshWindows, SessionCache
from bucketvault.providers.aws.settings import DEFAULT_REGION, AwsSettings
from bucketvault.providers.aws.sigv4 import (
    MAX_EXPIRES_SECONDS,
    BatchPresigner,
    PresignParams,
    PresignTarget,
    SigningKeyCache,
    amz_date,
)
from bucketvault.providers.aws.sts import (
    FLOOR_SESSION_SECONDS,
    FULL_SESSION_SECONDS,
    AssumeRoleDenied,
    AssumeRoleRequest,
    Backoff,
    BotoSts,
    SessionDurationRefused,
    StsGateway,
    assume_role_with_retry,
    role_arn_of,
    session_name,
)
from bucketvault.urlpolicy import UrlPolicy

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class _Location:
    region: str
    endpoint: str
    target: PresignTarget


class AwsHandle:
    """Signs, lists and checks with one credential; thread-safe."""

    def __init__(
        self,
        credentials: Callable[[], AwsCredentials],
        clock: Clock,
        clients: s3.S3Clients,
        *,
        endpoint: str,
        region: str,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._clients = clients
        # The credential's or the service's S3 endpoint and region ("" = AWS / resolve).
        self._endpoint = endpoint
        self._region = region
        self._on_close = on_close
        self._signing_keys = SigningKeyCache()
        self._lock = threading.Lock()
        self._locations: dict[tuple[str, str, str, str], _Location] = {}

    def _location(self, mount: Mount, credentials: AwsCredentials) -> _Location:
        endpoint = mount.endpoint.rstrip("/") or self._endpoint
        slot = (mount.mount_id, mount.bucket, endpoint, mount.region)
        location = self._locations.get(slot)
        if location is not None:
            return location
        region = mount.region or self._region
        if not region:
            # Once per mount: the bucket's home region, which its URLs must be scoped to.
            client = self._clients.get(credentials, DEFAULT_REGION, endpoint)
            region = s3.bucket_region(client, mount.bucket) or DEFAULT_REGION
        if endpoint:
            target = custom_target(endpoint, mount.bucket, region)
        else:
            target = aws_target(mount.bucket, region)
        location = _Location(region, endpoint, target)
        with self._lock:
            self._locations[slot] = location
        return location

    def sign(self, mount: Mount, keys: Sequence[str], options: SignOptions) -> list[SignedUrl]:
        """Presign every key with the current session; expiry capped by the session."""
        if options.expires_in <= 0:
            raise InvalidArgument("the URL lifetime must be positive", reason="INVALID_TTL")
        credentials = self._credentials()
        now = self._clock.now().replace(microsecond=0)
        expires_in, capped_by = options.expires_in, options.capped_by
        if expires_in > MAX_EXPIRES_SECONDS:
            expires_in, capped_by = MAX_EXPIRES_SECONDS, "PROVIDER_MAX"
        if credentials.expiration is not None:
            left = int((credentials.expiration - SKEW - now).total_seconds())
            if left < expires_in:
                if left <= 0:
                    raise Unavailable(
                        "the AWS session for this credential has expired and could not be renewed",
                        reason="SESSION_EXPIRED",
                    )
                expires_in, capped_by = left, "SESSION_EXPIRY"
        location = self._location(mount, credentials)
        identity = credentials.identity()
        timestamp = amz_date(now)
        signing_key = self._signing_keys.get(identity, timestamp[:8], location.region, "s3")
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        if options.method is Method.PUT:
            if options.content_type:
                headers["Content-Type"] = options.content_type
        else:
            if options.response_content_type:
                query.append(("response-content-type", options.response_content_type))
            if options.response_content_disposition:
                query.append(("response-content-disposition", options.response_content_disposition))
        params = PresignParams(options.method.value, expires_in, now, query, headers)
        presign = BatchPresigner(location.target, identity, params, signing_key).url
        expires_at = now + timedelta(seconds=expires_in)
        method = options.method
        return [
            SignedUrl(key, presign(key), method, expires_at, headers, capped_by) for key in keys
        ]

    def list(
        self, mount: Mount, request: ListRequest, sign: SignOptions | None
    ) -> Iterator[ListPage]:
        """ListObjectsV2 pages, fetched only as the caller consumes them."""
        credentials = self._credentials()
        location = self._location(mount, credentials)
        client = self._clients.get(credentials, location.region, location.endpoint)
        for page in s3.list_pages(client, mount.bucket, request):
            if sign is None or not page.entries:
                yield page
            else:
                yield replace(page, entries=self._with_urls(mount, page.entries, sign))

    def _with_urls(
        self, mount: Mount, entries: tuple[ListEntry, ...], sign: SignOptions
    ) -> tuple[ListEntry, ...]:
        # Stored keys are not ours to trust: one with a '..' segment or a control
        # character gets no URL, exactly as SignURL would refuse it.
        signable = [e.key for e in entries if _signable(e.key, mount.prefix)]
        options = SignOptions(Method.GET, sign.expires_in, sign.capped_by)
        urls = {u.key: u.url for u in self.sign(mount, signable, options)} if signable else {}
        return tuple(replace(e, url=urls.get(e.key, "")) for e in entries)

    def check(self, mount: Mount) -> CheckResult:
        """HeadBucket + ListObjectsV2(MaxKeys=1) with this credential."""
        try:
            credentials = self._credentials()
        except AssumeRoleDenied as exc:
            return CheckResult(MountState.FORBIDDEN, exc.reason, exc.message)
        try:
            location = self._location(mount, credentials)
        except NotFound as exc:
            return CheckResult(MountState.NOT_FOUND, exc.reason, exc.message)
        except Unavailable as exc:
            server = mount.endpoint or self._endpoint or "S3"
            return CheckResult(
                MountState.MISCONFIGURED,
                "ENDPOINT_UNREACHABLE",
                f"could not reach {server} ({exc.message}): check the mount's endpoint and region",
            )
        client = self._clients.get(credentials, location.region, location.endpoint)
        where = s3.S3Location(mount.bucket, location.region, location.endpoint)
        result = s3.check_bucket(client, where, mount.prefix)
        if result.state is not MountState.AVAILABLE:
            # The cached region may be what is wrong: resolve again next time.
            with self._lock:
                self._locations = {
                    k: v for k, v in self._locations.items() if k[0] != mount.mount_id
                }
        return result

    def close(self) -> None:
        """Drop the session, derived keys and clients."""
        self._on_close()
        self._signing_keys.clear()
        self._clients.clear()


def _signable(key: str, prefix: str) -> bool:
    try:
        check_key(key, prefix)
    except BucketVaultError:
        return False
    return True


class AwsProvider:
    """CloudProvider for AWS roles and S3-compatible access keys."""

    name = "aws"
    kinds = frozenset({CredentialKind.AWS_ROLE, CredentialKind.S3_ACCESS_KEY})

    def __init__(
        self,
        settings: AwsSettings,
        clock: Clock,
        url_policy: UrlPolicy,
        *,
        sts: StsGateway | None = None,
        backoff: Backoff | None = None,
        windows: RefreshWindows | None = None,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._url_policy = url_policy
        self._sts = sts or BotoSts(self._service_session, settings.sts_endpoint, settings.region)
        self._backoff = backoff or Backoff()
        self._windows = windows or RefreshWindows()
        self._spawn = spawn
        self._principal = ""
        self._principal_lock = threading.Lock()

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

    def prepare(self, context: RegistrationContext, secret: SecretDocument) -> Preparation:
        """AWS_ROLE: assume the role once to prove the trust policy; S3 keys: nothing."""
        if context.kind is not CredentialKind.AWS_ROLE:
            return Preparation()
        role_arn = secret.str("role_arn")
        request = AssumeRoleRequest(
            role_arn=role_arn,
            session_name=session_name(context.tenant, context.credential_id),
            external_id=context.external_id,
            duration_seconds=FULL_SESSION_SECONDS,
        )
        metadata = {META_EXTERNAL_ID: context.external_id}
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
            return Preparation(metadata, (_session_warning(limit, role_arn),))
        metadata[META_SESSION_SECONDS] = str(FULL_SESSION_SECONDS)
        return Preparation(metadata)

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        """Nothing time-dependent: the session-length warning is stored at registration."""
        return ()

    def open(self, credential: Credential, secret: SecretDocument) -> AwsHandle:
        """A handle holding the key (S3_ACCESS_KEY) or a session cache (AWS_ROLE)."""
        clients = s3.S3Clients(_client_session)
        if credential.kind is CredentialKind.S3_ACCESS_KEY:
            static = AwsCredentials(secret.str("access_key_id"), secret.str("secret_access_key"))
            endpoint = secret.str("endpoint_url")
            if endpoint:
                endpoint = self._url_policy.check_endpoint(endpoint, field="endpoint_url")
            return AwsHandle(
                lambda: static,
                self._clock,
                clients,
                endpoint=endpoint or self._settings.s3_endpoint,
                region=secret.str("region"),
            )
        if credential.kind is not CredentialKind.AWS_ROLE:
            raise FailedPrecondition(
                f"the aws provider does not serve {credential.kind.value}",
                reason="WRONG_PROVIDER",
            )
        cache = SessionCache(
            self._role_fetcher(credential, secret),
            self._clock,
            self._windows,
            **({"spawn": self._spawn} if self._spawn else {}),
        )
        return AwsHandle(
            cache.get,
            self._clock,
            clients,
            endpoint=self._settings.s3_endpoint,
            region="",
            on_close=cache.close,
        )

    def _role_fetcher(
        self, credential: Credential, secret: SecretDocument
    ) -> Callable[[], AwsCredentials]:
        meta: Mapping[str, str] = credential.metadata
        role_arn = secret.str("role_arn") or meta.get("role_arn", "")
        external_id = meta.get(META_EXTERNAL_ID, "") or secret.str("external_id")
        seconds = int(meta.get(META_SESSION_SECONDS, "") or FULL_SESSION_SECONDS)
        request = AssumeRoleRequest(
            role_arn=role_arn,
            session_name=session_name(credential.tenant, credential.credential_id),
            external_id=external_id,
            duration_seconds=seconds,
        )
        state = {"request": request}

        def fetch() -> AwsCredentials:
            try:
                return assume_role_with_retry(self._sts, state["request"], self._backoff)
            except SessionDurationRefused:
                # The role's MaxSessionDuration was lowered after registration.
                log.warning("role %s refused %ss sessions; using 3600s", role_arn, seconds)
                shorter = replace(state["request"], duration_seconds=FLOOR_SESSION_SECONDS)
                state["request"] = shorter
                return assume_role_with_retry(self._sts, shorter, self._backoff)

        return fetch


def _client_session(credentials: AwsCredentials) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token or None,
    )


__all__ = ["AwsHandle", "AwsProvider"]
