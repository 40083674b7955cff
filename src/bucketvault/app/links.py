"""Stable link use cases: CreateLink(s), RevokeLink and opening a link (HTTP).

A link is a token (links/tokens.py) naming a tenant, a mount, a key or a prefix and the
methods it may be opened with. Creating one needs what signing needs: the signer role and
a grant reaching the mount, every method and the key or prefix. Opening one needs only
the token: it is checked (MAC, expiry, revocation list), then the mount is read and the
key signed with the mount's current credential, so a link survives a rebind and dies
with the credential's revocation or the mount's deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from bucketvault.app.common import Seams, limit_text, need, need_keys, new_id, tenant_name
from bucketvault.app.mounts import Mounts
from bucketvault.app.signing import MAX_BATCH_KEYS
from bucketvault.audit.draft import current_draft
from bucketvault.audit.log import Change
from bucketvault.auth.authz import Ask, Decision, Reach, require
from bucketvault.errors import (
    BucketVaultError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from bucketvault.links.revocations import Revocations
from bucketvault.links.tokens import LINK_ID, LinkClaims, LinkCodec
from bucketvault.models import Method, Mount, Principal, Role, SignedUrl, SignOptions
from bucketvault.objectkeys import check_key, check_keys, check_prefix
from bucketvault.providers import rules
from bucketvault.store.base import LinkRevocation

LINK_METHODS = frozenset({Method.GET, Method.HEAD})
# The longest a link may be made to live (0 = forever is allowed too).
MAX_LINK_SECONDS = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class LinkInput:
    tenant: str
    mount_id: str
    key: str
    prefix: str
    whole_prefix: bool
    methods: frozenset[Method]
    expires_in_seconds: int


@dataclass(frozen=True)
class LinksInput:
    tenant: str
    mount_id: str
    keys: tuple[str, ...]
    methods: frozenset[Method]
    expires_in_seconds: int


@dataclass(frozen=True)
class IssuedLink:
    link_id: str
    # For a key, the link; for a prefix, the base the full object key is appended to.
    url: str
    mount_id: str
    key: str
    prefix: str
    methods: frozenset[Method]
    expires_at: datetime | None


@dataclass(frozen=True)
class OpenInput:
    """One HTTP request for a link: the token and object key from the path."""

    token: str
    key: str
    method: Method


@dataclass(frozen=True)
class NetworkOpenInput:
    """One network-mode request: tenant, mount and key from the path, and who asked
    (``network:<address>`` or ``oidc:<subject>``, decided by the HTTP layer)."""

    tenant: str
    mount_id: str
    key: str
    method: Method
    principal: str


@dataclass(frozen=True)
class Redirect:
    url: str
    # How long the redirect may be cached: the signed URL's remaining life minus a margin.
    max_age: int
    link_id: str


@dataclass(frozen=True)
class LinkSettings:
    """From config.HttpConfig: where links point and how opens sign."""

    # "https://img.example.com": links are <base>/l/<token>/<key>. Empty: no links.
    public_url: str = ""
    url_ttl_seconds: int = 600
    cache_margin_seconds: int = 60


def _gone(reason: str) -> NotFound:
    # Every refusal of an open answers 404 alike; the reason is for the audit record.
    return NotFound("no such link", reason=reason)


def link_path(token: str, key: str) -> str:
    """The path of a link to key (each key segment percent-encoded, "/" kept)."""
    return f"/l/{token}/{quote(key, safe='/')}"


@dataclass(frozen=True)
class Links:
    seams: Seams
    mounts: Mounts
    codec: LinkCodec
    revocations: Revocations
    settings: LinkSettings

    # -- creating ----------------------------------------------------------
    def _methods(self, methods: frozenset[Method], mount: Mount) -> frozenset[Method]:
        wanted = methods or (LINK_METHODS & mount.policy.allowed_methods)
        if not wanted or not wanted <= LINK_METHODS:
            raise InvalidArgument(
                "links open with GET and/or HEAD only", reason="INVALID_FIELD", field="methods"
            )
        missing = wanted - mount.policy.allowed_methods
        if missing:
            raise PermissionDenied(
                f"the mount does not allow {sorted(m.value for m in missing)[0]}",
                reason="METHOD_NOT_ALLOWED",
                field="methods",
            )
        return wanted

    def _expiry(self, seconds: int) -> datetime | None:
        if not 0 <= seconds <= MAX_LINK_SECONDS:
            raise InvalidArgument(
                f"expires_in_seconds must be at most {MAX_LINK_SECONDS}",
                reason="INVALID_FIELD",
                field="expires_in_seconds",
            )
        if seconds == 0:
            return None
        return self.seams.clock.now().replace(microsecond=0) + timedelta(seconds=seconds)

    def _mount(self, principal: Principal, tenant: str, mount_id: str) -> Mount:
        """The mount, if the caller may sign for some of it (checked before the lookup)."""
        ask = Ask((Role.SIGNER,), tenant)
        require(principal, ask)
        mount = self.mounts.granted(principal, ask, mount_id)
        self.seams.record.note(credential_id=mount.credential_id)
        if not self.settings.public_url:
            raise FailedPrecondition(
                "this server has no HTTP listener for links (BUCKETVAULT_HTTP_LISTEN)",
                reason="LINKS_NOT_CONFIGURED",
            )
        return mount

    def _granted(
        self,
        principal: Principal,
        mount: Mount,
        methods: frozenset[Method],
        keys: Sequence[str],
        keys_field: str,
    ) -> tuple[frozenset[Method], int]:
        """The link's methods (each granted for every key) and its URLs' lifetime."""
        chosen = self._methods(methods, mount)
        decision: Decision | None = None
        for method in sorted(chosen, key=lambda m: m.value):
            decision = require(
                principal,
                Ask((Role.SIGNER,), mount.tenant, Reach.MOUNT, mount, method, 0, keys),
                keys_field=keys_field,
            )
        assert decision is not None
        # A grant's maximum URL lifetime holds for the URLs its links redirect to.
        ttl = min(self.settings.url_ttl_seconds, mount.policy.max_ttl_seconds)
        ttl, _ = decision.cap(ttl, "")
        return chosen, ttl

    def _issue(self, mount: Mount, key: str, prefix: str, claims: LinkClaims) -> IssuedLink:
        token = self.codec.mint(claims)
        url = self.settings.public_url + link_path(token, key)
        return IssuedLink(
            claims.link_id, url, mount.mount_id, key, prefix, claims.methods, claims.expires_at
        )

    def create(self, principal: Principal, req: LinkInput, request_id: str) -> IssuedLink:
        """One link: to a key, or (whole_prefix) to every key under a prefix."""
        tenant = tenant_name(req.tenant)
        mount = self._mount(principal, tenant, req.mount_id)
        if bool(req.key) == req.whole_prefix:
            raise InvalidArgument(
                "give a key, or whole_prefix with an optional prefix",
                reason="INVALID_FIELD",
                field="key",
            )
        expires_at = self._expiry(req.expires_in_seconds)
        if req.key:
            target = check_key(req.key, mount.prefix)
        else:
            target = check_prefix(req.prefix, mount.prefix)
        field = "key" if req.key else "prefix"
        methods, ttl = self._granted(principal, mount, req.methods, (target,), field)
        claims = LinkClaims(
            new_id("lnk_"), tenant, mount.mount_id, target, bool(req.key), methods, expires_at, ttl
        )
        link = self._issue(mount, req.key, "" if req.key else target, claims)
        self._record(principal, tenant, mount, request_id, [link])
        return link

    def create_many(
        self, principal: Principal, req: LinksInput, request_id: str
    ) -> list[IssuedLink]:
        """One key link per key, under one audit record."""
        tenant = tenant_name(req.tenant)
        mount = self._mount(principal, tenant, req.mount_id)
        need_keys(req.keys, MAX_BATCH_KEYS)
        expires_at = self._expiry(req.expires_in_seconds)
        check_keys(req.keys, mount.prefix)
        methods, ttl = self._granted(principal, mount, req.methods, req.keys, "keys")
        links = [
            self._issue(
                mount,
                key,
                "",
                LinkClaims(
                    new_id("lnk_"), tenant, mount.mount_id, key, True, methods, expires_at, ttl
                ),
            )
            for key in req.keys
        ]
        self._record(principal, tenant, mount, request_id, links)
        return links

    def _record(
        self,
        principal: Principal,
        tenant: str,
        mount: Mount,
        request_id: str,
        links: Sequence[IssuedLink],
    ) -> None:
        first = links[0]
        # The link ids of a batch are its first one's and a count: the keys are listed
        # (and counted, hashed) by the call's draft.
        self.seams.record(
            principal,
            tenant,
            "link.create",
            mount.mount_id,
            request_id,
            method=",".join(sorted(m.value for m in first.methods)),
            expires_at=first.expires_at,
            link_count=str(len(links)),
            link_id=first.link_id,
            prefix=first.prefix,
        )

    # -- revoking ----------------------------------------------------------
    def revoke(
        self,
        principal: Principal,
        tenant: str,
        mount_id: str,
        link_id: str,
        reason: str,
        request_id: str,
    ) -> LinkRevocation:
        """Put the link on the revocation list (idempotent: the first revocation stays)."""
        tenant = tenant_name(tenant)
        ask = Ask((Role.SIGNER, Role.OPERATOR), tenant)
        require(principal, ask)
        need(link_id, "link_id", LINK_ID)
        limit_text(reason, "reason", 512)
        mount = self.mounts.granted(principal, ask, mount_id)
        revocation = LinkRevocation(
            link_id, tenant, mount.mount_id, self.seams.clock.now(), principal.name, reason
        )
        stored = self.seams.record.mutate(
            Change(lambda writes: writes.revoke_link(revocation)),
            principal,
            tenant,
            "link.revoke",
            mount.mount_id,
            request_id,
            link_id=link_id,
        )
        self.revocations.add(tenant, mount.mount_id, link_id)
        return stored

    # -- opening -----------------------------------------------------------
    def link_id(self, token: str) -> str:
        """The link id of an authentic token, "" otherwise (for per-link limits); the
        call's audit draft names the link, so a throttled open is on its tenant's log."""
        try:
            claims = self.codec.verify(token)
        except NotFound:
            return ""
        draft = current_draft()
        if draft is not None:
            draft.principal = f"link:{claims.link_id}"
            draft.tenant = claims.tenant
            draft.mount_id = claims.mount_id
        return claims.link_id

    def open_network(self, req: NetworkOpenInput, request_id: str) -> Redirect:
        """Network mode: the key of a mount by name, the caller already admitted by the
        HTTP layer (client network, OIDC). Every refusal is NotFound, as for a token."""
        try:
            tenant = tenant_name(req.tenant)
            need(req.mount_id, "mount_id")
        except BucketVaultError:
            raise _gone("MOUNT_NOT_FOUND") from None
        draft = current_draft()
        principal = Principal(req.principal, frozenset(), frozenset({tenant}))
        if draft is not None:
            draft.principal = principal.name
            draft.tenant = tenant
            draft.mount_id = req.mount_id
        now = self.seams.clock.now().replace(microsecond=0)
        # A mount is one scope: as though a link to every key of it existed.
        claims = LinkClaims(
            "",
            req.tenant,
            req.mount_id,
            req.key,
            True,
            LINK_METHODS,
            None,
            self.settings.url_ttl_seconds,
        )
        return self._redirect(
            principal, OpenInput("", req.key, req.method), claims, now, request_id
        )

    def open(self, req: OpenInput, request_id: str) -> Redirect:
        """Check the token and sign the key for a redirect; every refusal is NotFound."""
        claims = self.codec.verify(req.token)
        draft = current_draft()
        principal = Principal(f"link:{claims.link_id}", frozenset(), frozenset({claims.tenant}))
        if draft is not None:
            draft.principal = principal.name
            draft.tenant = claims.tenant
            draft.mount_id = claims.mount_id
        now = self.seams.clock.now().replace(microsecond=0)
        if claims.expires_at is not None and now >= claims.expires_at:
            raise _gone("LINK_EXPIRED")
        if self.revocations.is_revoked(claims.tenant, claims.mount_id, claims.link_id):
            raise _gone("LINK_REVOKED")
        if req.method not in claims.methods:
            raise _gone("METHOD_NOT_ALLOWED")
        inside = req.key == claims.prefix if claims.exact else req.key.startswith(claims.prefix)
        if not inside:
            raise _gone("KEY_OUTSIDE_LINK")
        return self._redirect(principal, req, claims, now, request_id)

    def _redirect(
        self,
        principal: Principal,
        req: OpenInput,
        claims: LinkClaims,
        now: datetime,
        request_id: str,
    ) -> Redirect:
        try:
            mount = self.seams.store.get_mount(claims.tenant, claims.mount_id)
        except BucketVaultError as exc:
            if isinstance(exc, (NotFound, InvalidArgument)):
                raise _gone("MOUNT_NOT_FOUND") from None
            raise
        if mount is None:
            raise _gone("MOUNT_NOT_FOUND")
        self.seams.record.note(credential_id=mount.credential_id)
        try:
            check_key(req.key, mount.prefix)
        except BucketVaultError as exc:
            raise _gone(exc.reason) from None
        if req.method not in mount.policy.allowed_methods:
            raise _gone("METHOD_NOT_ALLOWED")
        url = self._sign(mount, req, claims, now)
        left = int((url.expires_at - now).total_seconds())
        max_age = max(0, left - self.settings.cache_margin_seconds)
        self.seams.record(
            principal,
            claims.tenant,
            "link.open",
            mount.mount_id,
            request_id,
            method=req.method.value,
            expires_at=url.expires_at,
            **({"link_id": claims.link_id} if claims.link_id else {"mode": "network"}),
        )
        return Redirect(url.url, max_age, claims.link_id)

    def _sign(self, mount: Mount, req: OpenInput, claims: LinkClaims, now: datetime) -> SignedUrl:
        ttl = min(claims.url_ttl_seconds, mount.policy.max_ttl_seconds)
        capped_by = "MOUNT_MAX_TTL" if ttl < claims.url_ttl_seconds else ""
        if claims.expires_at is not None:
            # A redirect never outlives its link.
            ttl = min(ttl, int((claims.expires_at - now).total_seconds()))
        try:
            cred, handle = self.seams.handles.for_mount(mount)
        except (NotFound, FailedPrecondition) as exc:
            # A revoked or missing credential: the link died with it.
            raise _gone(exc.reason) from None
        limit = self.seams.registry.provider(cred.kind).max_url_seconds
        options = SignOptions(req.method, max(ttl, 1), now, capped_by)
        return rules.sign_urls(handle, mount, (req.key,), options, limit)[0]


__all__ = [
    "LINK_METHODS",
    "MAX_LINK_SECONDS",
    "IssuedLink",
    "NetworkOpenInput",
    "LinkInput",
    "LinkSettings",
    "Links",
    "LinksInput",
    "OpenInput",
    "Redirect",
    "link_path",
]
