"""Mount use cases: create, read, list, update, delete, rebind (rotation, moves) and check.

Creating, rebinding and checking a mount that does not exist yet choose among the
tenant's credentials, so they need a grant on the whole tenant; so do updating and
deleting, because grants name mounts: a rename or a delete-and-recreate could move a
mount into another principal's grant. Reading and checking one mount need a grant
reaching that mount, and a listing shows only the mounts the caller's grants reach.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bucketvault.app.common import Seams, need, new_id, page_size, tenant_name
from bucketvault.audit.log import Change
from bucketvault.auth.authz import Ask, Reach, decide, require
from bucketvault.config import MAX_URL_TTL_SECONDS
from bucketvault.errors import (
    Aborted,
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from bucketvault.models import (
    CheckResult,
    CorsVerdict,
    Credential,
    CredentialState,
    Method,
    Mount,
    MountPolicy,
    MountState,
    Principal,
    Role,
)
from bucketvault.objectkeys import check_mount_prefix
from bucketvault.providers.base import MountAdmission
from bucketvault.providers.cors import CorsSource, preflight
from bucketvault.providers.egress import Egress
from bucketvault.providers.kinds import StoredSecretRefused
from bucketvault.providers.uris import MAX_URI_LENGTH, ObjectUri

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REGION = re.compile(r"^[a-z0-9-]{0,32}$")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
# A browser origin as sent in an Origin header: scheme://host[:port], nothing more.
_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?$")
# The roles that may read mounts.
_READERS = (Role.OPERATOR, Role.AUDITOR, Role.SIGNER)
# The id a mount that does not exist yet is checked under (CheckMount before creating):
# providers key per-mount caches by id, and this one is never stored.
UNSAVED_MOUNT_ID = "mnt_unsaved"


@dataclass(frozen=True)
class MountInput:
    tenant: str
    name: str
    bucket: str
    prefix: str
    region: str
    endpoint: str
    credential_id: str
    max_ttl_seconds: int
    allowed_methods: frozenset[Method]
    allow_credential_lifetime: bool = False
    cache_stable_urls: bool = True


@dataclass(frozen=True)
class Location:
    """Where a mount's objects live: CreateMount's location fields."""

    bucket: str
    prefix: str = ""
    region: str = ""
    endpoint: str = ""


@dataclass(frozen=True)
class PolicyInput:
    """A mount policy as asked; 0 and empty mean CreateMount's defaults."""

    max_ttl_seconds: int = 0
    allowed_methods: frozenset[Method] = frozenset()
    allow_credential_lifetime: bool = False
    cache_stable_urls: bool = True


@dataclass(frozen=True)
class MountUpdate:
    """UpdateMount: a new name and/or policy for the mount at expected_version."""

    tenant: str
    mount_id: str
    expected_version: int
    # Empty: the name stays.
    name: str = ""
    # None: the policy stays.
    policy: PolicyInput | None = None


@dataclass(frozen=True)
class Prospect:
    """A mount that does not exist yet, to check before creating or moving one."""

    credential_id: str
    location: Location
    policy: PolicyInput = PolicyInput()


def policy_text(policy: MountPolicy) -> str:
    """A policy in one audit-record string (nothing in a policy is secret)."""
    methods = ",".join(sorted(m.value for m in policy.allowed_methods))
    return (
        f"max_ttl={policy.max_ttl_seconds};methods={methods};"
        f"credential_lifetime={str(policy.allow_credential_lifetime).lower()};"
        f"stable_urls={str(policy.cache_stable_urls).lower()}"
    )


def _need_version(expected_version: int, mount: Mount) -> None:
    """expected_version is given and is the version just read.

    A write built from a read older than expected_version would pass the store's
    compare-and-swap and put back the fields of the older read (a move undone by a
    concurrent policy update), so the read itself must be the expected version.
    """
    if expected_version <= 0:
        raise InvalidArgument(
            "expected_version is required (read the mount first)",
            reason="MISSING_FIELD",
            field="expected_version",
        )
    if mount.version != expected_version:
        raise Aborted(
            f"mount {mount.mount_id!r} changed since version {expected_version}",
            reason="VERSION_MISMATCH",
        )


@dataclass(frozen=True)
class Mounts:
    """Mounts: a bucket and prefix bound to one credential, with a policy."""

    seams: Seams
    default_max_ttl: int
    # Origins CheckMount probes browser access (CORS) for, besides the one asked.
    browser_origins: tuple[str, ...] = ()

    def find(self, tenant: str, mount_id: str) -> Mount:
        """The tenant's mount, or NOT_FOUND."""
        mount = self.seams.store.get_mount(tenant, need(mount_id, "mount_id"))
        if mount is None:
            raise NotFound("no such mount", reason="MOUNT_NOT_FOUND")
        return mount

    def granted(
        self, principal: Principal, ask: Ask, mount_id: str, *, recent: bool = False
    ) -> Mount:
        """The tenant's mount if ask, made for it, is allowed.

        MOUNT_NOT_FOUND only for callers whose grants reach every mount of the tenant;
        others get the denial a mount outside their grants gets. recent: the signing
        path may use a read of the last second (app/handles.py).
        """
        need(mount_id, "mount_id")
        mount = (
            self.seams.handles.recent_mount(ask.tenant, mount_id)
            if recent
            else self.seams.store.get_mount(ask.tenant, mount_id)
        )
        require(principal, replace(ask, reach=Reach.MOUNT, mount=mount))
        if mount is None:
            raise NotFound("no such mount", reason="MOUNT_NOT_FOUND")
        return mount

    def by_uris(
        self, principal: Principal, ask: Ask, uris: Sequence[str], field: str
    ) -> tuple[Mount, tuple[str, ...]]:
        """The one mount every URI resolves to, and the key each names.

        A URI resolves to the tenant's mount on the bucket it names whose credential is
        of the URI's cloud (and reaches the bucket: Azure's account) and whose prefix
        holds the key; the longest such prefix wins. Mounts outside the caller's grants
        are not candidates, so resolution shows the caller only mounts it may use.
        """
        # (family, bucket, account) -> the visible candidate mounts, read once per call.
        seen: dict[tuple[str, str, str], list[Mount]] = {}
        chosen: Mount | None = None
        keys: list[str] = []
        for i, uri in enumerate(uris):
            at = field if len(uris) == 1 else f"{field}[{i}]"
            mount, key = self._resolve(principal, ask, uri, at, seen)
            if chosen is not None and mount.mount_id != chosen.mount_id:
                raise InvalidArgument(
                    "the URIs resolve to more than one mount: sign each mount's separately",
                    reason="URIS_SPAN_MOUNTS",
                    field=at,
                )
            chosen = mount
            keys.append(key)
        if chosen is None:
            raise InvalidArgument(f"{field} is required", reason="MISSING_FIELD", field=field)
        return chosen, tuple(keys)

    def _resolve(
        self,
        principal: Principal,
        ask: Ask,
        uri: str,
        field: str,
        seen: dict[tuple[str, str, str], list[Mount]],
    ) -> tuple[Mount, str]:
        registry = self.seams.registry
        targets = registry.object_uri(uri) if len(uri) <= MAX_URI_LENGTH else []
        if not targets or any(not t.key for _, t in targets):
            raise InvalidArgument(
                "not an object URI of a cloud this service serves",
                reason="INVALID_URI",
                field=field,
            )
        found: list[tuple[Mount, str]] = []
        for family, target in targets:
            scope = (family, target.bucket, target.account)
            if scope not in seen:
                seen[scope] = self._candidates(principal, ask, family, target)
            found.extend((m, target.key) for m in seen[scope] if target.key.startswith(m.prefix))
        if not found:
            raise NotFound(
                "no mount of this tenant holds the URI's object",
                reason="NO_MOUNT_FOR_URI",
                field=field,
            )
        longest = max(len(m.prefix) for m, _ in found)
        best = [(m, k) for m, k in found if len(m.prefix) == longest]
        if len(best) > 1:
            names = ", ".join(sorted(m.name for m, _ in best))
            raise FailedPrecondition(
                f"the URI's object lies under equally specific mounts ({names}): "
                "sign by mount_id and key",
                reason="AMBIGUOUS_MOUNT",
                field=field,
            )
        return best[0]

    def _candidates(
        self, principal: Principal, ask: Ask, family: str, target: ObjectUri
    ) -> list[Mount]:
        out: list[Mount] = []
        mount_ask = replace(ask, reach=Reach.MOUNT)
        for mount in self.seams.store.mounts_for_bucket(ask.tenant, target.bucket):
            if not decide(principal, replace(mount_ask, mount=mount)).allowed:
                continue
            stored = self.seams.store.get_credential(ask.tenant, mount.credential_id)
            if stored is not None and self.seams.registry.serves_uri(
                stored.credential, family, target
            ):
                out.append(mount)
        return out

    def _active_credential(self, tenant: str, credential_id: str) -> Credential:
        stored = self.seams.store.get_credential(tenant, need(credential_id, "credential_id"))
        if stored is None:
            raise NotFound(
                "no such credential", reason="CREDENTIAL_NOT_FOUND", field="credential_id"
            )
        if stored.credential.state is not CredentialState.ACTIVE:
            raise FailedPrecondition(
                "the credential has been revoked",
                reason="CREDENTIAL_REVOKED",
                field="credential_id",
            )
        return stored.credential

    def _admit(self, credential: Credential, mount: Mount) -> None:
        """Let the credential's provider refuse a mount it could never serve, before it is
        stored (e.g. an AWS session policy over STS's limits)."""
        provider = self.seams.registry.provider(credential.kind)
        if isinstance(provider, MountAdmission):
            provider.admit_mount(credential, mount)

    def _location(self, where: Location, at: str) -> Location:
        """where, checked as CreateMount checks it (at: the fields' parent in the request),
        with the endpoint in its checked form."""
        field = f"{at}." if at else ""
        need(where.bucket, f"{field}bucket", _BUCKET)
        prefix = check_mount_prefix(where.prefix, field=f"{field}prefix")
        if not _REGION.match(where.region):
            raise InvalidArgument(
                "region is malformed", reason="INVALID_FIELD", field=f"{field}region"
            )
        endpoint = (
            self.seams.url_policy.check_endpoint(where.endpoint, field=f"{field}endpoint")
            if where.endpoint
            else ""
        )
        return Location(where.bucket, prefix, where.region, endpoint)

    def _policy(self, asked: PolicyInput) -> MountPolicy:
        """The policy asked, with CreateMount's defaults and checks."""
        max_ttl = asked.max_ttl_seconds or self.default_max_ttl
        if not 1 <= max_ttl <= MAX_URL_TTL_SECONDS:
            raise InvalidArgument(
                f"policy.max_ttl_seconds must be at most {MAX_URL_TTL_SECONDS}",
                reason="TTL_TOO_LONG",
                field="policy.max_ttl_seconds",
            )
        return MountPolicy(
            max_ttl,
            asked.allowed_methods or frozenset({Method.GET, Method.HEAD}),
            asked.allow_credential_lifetime,
            asked.cache_stable_urls,
        )

    def _forget(self, tenant: str, mount_id: str) -> None:
        """Drop what this process remembers of the mount (its recent read, its stable
        URLs): the next call reads the changed mount. Other replicas forget theirs within
        their recent-read window (app/handles.py)."""
        self.seams.handles.forget_mount(tenant, mount_id)

    def create(self, principal: Principal, req: MountInput, request_id: str) -> Mount:
        """A new mount on an active credential."""
        tenant = tenant_name(req.tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        need(req.name, "name", _NAME)
        where = self._location(Location(req.bucket, req.prefix, req.region, req.endpoint), "")
        policy = self._policy(
            PolicyInput(
                req.max_ttl_seconds,
                req.allowed_methods,
                req.allow_credential_lifetime,
                req.cache_stable_urls,
            )
        )
        credential = self._active_credential(tenant, req.credential_id)
        mount = self._fresh(new_id("mnt_"), tenant, req.name, where, req.credential_id, policy, 1)
        self.seams.record.note(mount_id=mount.mount_id)
        self._admit(credential, mount)
        self.seams.record.mutate(
            Change(lambda writes: writes.insert_mount(mount)),
            principal,
            tenant,
            "vault.create_mount",
            mount.mount_id,
            request_id,
        )
        return mount

    def get(self, principal: Principal, tenant: str, mount_id: str, request_id: str) -> Mount:
        """One mount."""
        tenant = tenant_name(tenant)
        ask = Ask(_READERS, tenant)
        require(principal, ask)
        mount = self.granted(principal, ask, mount_id)
        self.seams.record(principal, tenant, "vault.get_mount", mount.mount_id, request_id)
        return mount

    def list(
        self, principal: Principal, tenant: str, size: int, page_token: str, request_id: str
    ) -> tuple[list[Mount], str]:
        """A page of the tenant's mounts, by id."""
        tenant = tenant_name(tenant)
        ask = Ask(_READERS, tenant)
        require(principal, ask)
        limit = page_size(size, 100)
        rows = self.seams.store.list_mounts(tenant, page_token, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        token = rows[-1].mount_id if more and rows else ""
        # Filtered after paging, so that the page token stays the store's: a page may
        # hold fewer mounts than page_size, and none, with a token for the next.
        mount_ask = replace(ask, reach=Reach.MOUNT)
        shown = [m for m in rows if decide(principal, replace(mount_ask, mount=m)).allowed]
        self.seams.record(principal, tenant, "vault.list_mounts", tenant, request_id)
        return shown, token

    def rebind(
        self,
        principal: Principal,
        tenant: str,
        mount_id: str,
        credential_id: str,
        expected_version: int,
        location: Location | None,
        request_id: str,
    ) -> Mount:
        """Point the mount at another credential of the same cloud (compare-and-swap), or,
        with a location, move it to that location on the credential's cloud, any cloud."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        mount = self.find(tenant, mount_id)
        if expected_version <= 0:
            raise InvalidArgument(
                "expected_version is required (read the mount first)",
                reason="MISSING_FIELD",
                field="expected_version",
            )
        if location is not None:
            return self._move(
                principal, mount, credential_id, expected_version, location, request_id
            )
        new = self._active_credential(tenant, credential_id)
        old = self.seams.store.get_credential(tenant, mount.credential_id)
        if old is not None:
            before = self.seams.registry.family(old.credential.kind)
            if before != self.seams.registry.family(new.kind):
                raise FailedPrecondition(
                    f"a {before or old.credential.kind.value} mount cannot use a "
                    f"{new.kind.value} credential",
                    reason="KIND_MISMATCH",
                    field="credential_id",
                )
        self._admit(new, replace(mount, credential_id=new.credential_id))
        now = self.seams.clock.now()
        rebound = self.seams.record.mutate(
            Change(
                lambda writes: writes.rebind_mount(
                    tenant, mount.mount_id, new.credential_id, expected_version, now
                )
            ),
            principal,
            tenant,
            "vault.rebind_mount",
            mount.mount_id,
            request_id,
            credential_id=new.credential_id,
            previous_credential_id=mount.credential_id,
        )
        self._forget(tenant, mount.mount_id)
        return rebound

    def _move(
        self,
        principal: Principal,
        mount: Mount,
        credential_id: str,
        expected_version: int,
        location: Location,
        request_id: str,
    ) -> Mount:
        """One compare-and-swap to a new credential and location. The mount id stays, so
        references to it (mount id + key, stable links) follow the move."""
        where = self._location(location, "location")
        _need_version(expected_version, mount)
        new = self._active_credential(mount.tenant, credential_id)
        now = self.seams.clock.now()
        moved = replace(
            mount,
            credential_id=new.credential_id,
            bucket=where.bucket,
            prefix=where.prefix,
            region=where.region,
            endpoint=where.endpoint,
            version=expected_version + 1,
            updated_at=now,
        )
        self._admit(new, moved)
        result = self.seams.record.mutate(
            Change(lambda writes: writes.replace_mount(moved, expected_version)),
            principal,
            mount.tenant,
            "vault.rebind_mount",
            mount.mount_id,
            request_id,
            moved="true",
            credential_id=new.credential_id,
            previous_credential_id=mount.credential_id,
            bucket=where.bucket,
            previous_bucket=mount.bucket,
            prefix=where.prefix,
            previous_prefix=mount.prefix,
            region=where.region,
            previous_region=mount.region,
            endpoint=where.endpoint,
            previous_endpoint=mount.endpoint,
        )
        self._forget(mount.tenant, mount.mount_id)
        return result

    def update(self, principal: Principal, req: MountUpdate, request_id: str) -> Mount:
        """A new name and/or policy (compare-and-swap); the policy is checked as
        CreateMount's, and the credential's provider may refuse it as at creation."""
        tenant = tenant_name(req.tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        mount = self.find(tenant, req.mount_id)
        if req.name:
            need(req.name, "name", _NAME)
        policy = self._policy(req.policy) if req.policy is not None else None
        if not req.name and policy is None:
            raise InvalidArgument(
                "nothing to update: give a name or a policy",
                reason="MISSING_FIELD",
                field="policy",
            )
        _need_version(req.expected_version, mount)
        updated = replace(
            mount,
            name=req.name or mount.name,
            policy=policy or mount.policy,
            version=req.expected_version + 1,
            updated_at=self.seams.clock.now(),
        )
        stored = self.seams.store.get_credential(tenant, mount.credential_id)
        if stored is not None:
            self._admit(stored.credential, updated)
        result = self.seams.record.mutate(
            Change(lambda writes: writes.replace_mount(updated, req.expected_version)),
            principal,
            tenant,
            "vault.update_mount",
            mount.mount_id,
            request_id,
            name=updated.name,
            previous_name=mount.name,
            policy=policy_text(updated.policy),
            previous_policy=policy_text(mount.policy),
        )
        self._forget(tenant, mount.mount_id)
        return result

    def delete(
        self,
        principal: Principal,
        tenant: str,
        mount_id: str,
        expected_version: int,
        request_id: str,
    ) -> Mount:
        """Remove the mount (compare-and-swap); returns it as it was. Its audit records
        stay; its links and URLs are answered NOT_FOUND from then on."""
        tenant = tenant_name(tenant)
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        mount = self.find(tenant, mount_id)
        _need_version(expected_version, mount)
        self.seams.record.note(credential_id=mount.credential_id)
        gone = self.seams.record.mutate(
            Change(lambda writes: writes.delete_mount(tenant, mount.mount_id, expected_version)),
            principal,
            tenant,
            "vault.delete_mount",
            mount.mount_id,
            request_id,
            name=mount.name,
            bucket=mount.bucket,
            prefix=mount.prefix,
            region=mount.region,
            endpoint=mount.endpoint,
            policy=policy_text(mount.policy),
        )
        self._forget(tenant, mount.mount_id)
        return gone

    def _browser_access(self, handle: object, mount: Mount, origin: str) -> tuple[CorsVerdict, ...]:
        """One CORS preflight per origin (the asked one first), when the handle can say
        where the mount's objects live."""
        origins = tuple(
            dict.fromkeys((origin, *self.browser_origins) if origin else self.browser_origins)
        )
        if not origins or not isinstance(handle, CorsSource):
            return ()
        try:
            target = handle.cors_target(mount)
        except BucketVaultError:
            return ()
        if target is None:
            return ()
        # The bucket's URL comes from a customer's endpoint: the probe passes the guard too.
        with Egress(self.seams.url_policy).session() as session:
            return tuple(preflight(target, o, session=session) for o in origins)

    def check(
        self,
        principal: Principal,
        tenant: str,
        mount_id: str,
        origin: str,
        prospect: Prospect | None,
        request_id: str,
    ) -> CheckResult:
        """Ask the cloud whether the mount works with its credential and, once it does,
        whether browsers on origin (and on the configured origins) may fetch from it.

        prospect instead of mount_id: the same checks for a mount that does not exist
        yet (before creating one, or before a rebind or a move), writing nothing.
        """
        tenant = tenant_name(tenant)
        ask = Ask((Role.OPERATOR,), tenant)
        require(principal, ask)
        if origin and not _ORIGIN.match(origin):
            raise InvalidArgument(
                "origin must be scheme://host[:port], as a browser sends it",
                reason="INVALID_FIELD",
                field="origin",
            )
        if prospect is not None and mount_id:
            raise InvalidArgument(
                "give a mount_id or a credential_id and location, not both",
                reason="INVALID_FIELD",
                field="credential_id",
            )
        if prospect is None:
            mount = self.granted(principal, ask, mount_id)
        else:
            mount = self._prospective(principal, tenant, prospect)
        self.seams.record.note(credential_id=mount.credential_id)
        result = self._checked(mount, origin, prospect is not None)
        if prospect is None:
            self.seams.record(
                principal,
                tenant,
                "vault.check_mount",
                mount.mount_id,
                request_id,
                state=result.state.value,
                reason=result.reason,
            )
        else:
            # An unsaved mount has no id of its own: its record names the credential
            # and the location checked.
            self.seams.record(
                principal,
                tenant,
                "vault.check_mount",
                mount.credential_id,
                request_id,
                state=result.state.value,
                reason=result.reason,
                prospective="true",
                bucket=mount.bucket,
                prefix=mount.prefix,
                region=mount.region,
                endpoint=mount.endpoint,
            )
        return result

    def _prospective(self, principal: Principal, tenant: str, prospect: Prospect) -> Mount:
        """The unsaved mount a prospect describes, checked as CreateMount checks one."""
        # Choosing among the tenant's credentials: a grant on the whole tenant, as to create.
        require(principal, Ask((Role.OPERATOR,), tenant, Reach.TENANT))
        where = self._location(prospect.location, "location")
        policy = self._policy(prospect.policy)
        credential = self._active_credential(tenant, prospect.credential_id)
        return self._fresh(
            UNSAVED_MOUNT_ID, tenant, UNSAVED_MOUNT_ID, where, credential.credential_id, policy, 0
        )

    def _fresh(
        self,
        mount_id: str,
        tenant: str,
        name: str,
        where: Location,
        credential_id: str,
        policy: MountPolicy,
        version: int,
    ) -> Mount:
        """A mount made now: CreateMount's, or the unsaved one a check describes."""
        now = self.seams.clock.now()
        return Mount(
            mount_id=mount_id,
            tenant=tenant,
            name=name,
            bucket=where.bucket,
            prefix=where.prefix,
            region=where.region,
            endpoint=where.endpoint,
            credential_id=credential_id,
            policy=policy,
            version=version,
            created_at=now,
            updated_at=now,
        )

    def _checked(self, mount: Mount, origin: str, admit: bool) -> CheckResult:
        """The provider's verdict on the mount (admit: first what CreateMount's admission
        would refuse, as MISCONFIGURED), with CORS once it is AVAILABLE."""
        try:
            credential, handle = self.seams.handles.for_mount(mount)
        except StoredSecretRefused as exc:
            return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        if admit:
            try:
                self._admit(credential, mount)
            except (FailedPrecondition, InvalidArgument) as exc:
                return CheckResult(MountState.MISCONFIGURED, exc.reason, exc.message)
        result = handle.check(mount)
        if result.state is MountState.AVAILABLE:
            result = replace(result, cors=self._browser_access(handle, mount, origin))
        return result


__all__ = [
    "UNSAVED_MOUNT_ID",
    "Location",
    "MountInput",
    "MountUpdate",
    "Mounts",
    "PolicyInput",
    "Prospect",
    "policy_text",
]
