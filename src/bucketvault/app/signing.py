"""Signer use cases: SignURL / SignURLs and ListPrefix.

The request is checked against the caller's grants (auth/authz.py: mount, method, TTL,
every key or the listing prefix) and against the mount (methods, TTL, keys under its
prefix) here; the rules every cloud shares (expiry cap, listed keys) are applied by
providers/rules.py around the mount's credential handle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from bucketvault.app.common import MAX_PAGE_SIZE, Seams, need_keys, tenant_name
from bucketvault.app.mounts import Mounts
from bucketvault.app.pagetokens import ListScope, PageTokens
from bucketvault.auth.authz import Ask, Decision, Reach, require
from bucketvault.errors import InvalidArgument, PermissionDenied
from bucketvault.models import (
    NO_OVERRIDES,
    ListPage,
    ListRequest,
    Method,
    Mount,
    Overrides,
    Principal,
    Role,
    SignedUrl,
    SignOptions,
)
from bucketvault.objectkeys import check_key, check_keys, check_prefix
from bucketvault.providers import rules

MAX_BATCH_KEYS = 1000
_OVERRIDE_FIELDS = tuple(f.name for f in dataclasses.fields(Overrides))


@dataclass(frozen=True)
class SignInput:
    tenant: str
    mount_id: str
    keys: tuple[str, ...]
    method: Method | None
    ttl_seconds: int
    overrides: Overrides = NO_OVERRIDES
    # Instead of mount_id and keys: object URIs, resolved to one mount.
    uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signed:
    """A call's URLs, in the order asked, and the mount that signed them."""

    mount_id: str
    urls: list[SignedUrl]


@dataclass(frozen=True)
class ListInput:
    tenant: str
    mount_id: str
    prefix: str
    delimiter: str
    page_size: int
    page_token: str
    sign_ttl_seconds: int


@dataclass(frozen=True)
class Signing:
    """Signed URLs and listings for mounts."""

    seams: Seams
    mounts: Mounts
    default_ttl: int
    page_tokens: PageTokens

    def _options(
        self,
        mount: Mount,
        method: Method,
        ttl: int,
        decision: Decision,
        wanted: Overrides = NO_OVERRIDES,
        caller: str = "",
    ) -> SignOptions:
        if method not in mount.policy.allowed_methods:
            raise PermissionDenied(
                f"the mount does not allow {method.value}",
                reason="METHOD_NOT_ALLOWED",
                field="method",
            )
        if ttl < 0:
            raise InvalidArgument(
                "ttl_seconds must be positive", reason="INVALID_FIELD", field="ttl_seconds"
            )
        if ttl > mount.policy.max_ttl_seconds:
            raise InvalidArgument(
                f"ttl_seconds exceeds the mount's maximum of {mount.policy.max_ttl_seconds}",
                reason="TTL_TOO_LONG",
                field="ttl_seconds",
            )
        capped_by = ""
        if ttl == 0:
            ttl = self.default_ttl
            if ttl > mount.policy.max_ttl_seconds:
                ttl, capped_by = mount.policy.max_ttl_seconds, "MOUNT_MAX_TTL"
            # No lifetime asked: the grant's maximum shortens the default, as the mount's
            # does (an asked lifetime over it was refused by the decision).
            ttl, capped_by = decision.cap(ttl, capped_by)
        if method is not Method.PUT and wanted.content_type:
            raise InvalidArgument(
                "content_type applies to PUT only", reason="INVALID_FIELD", field="content_type"
            )
        if method is Method.PUT and (
            wanted.response_content_type or wanted.response_content_disposition
        ):
            raise InvalidArgument(
                "response overrides apply to GET and HEAD only",
                reason="INVALID_FIELD",
                field="response_content_type",
            )
        # Most calls carry no overrides: skip the per-character scan for them.
        if wanted != NO_OVERRIDES:
            for name in _OVERRIDE_FIELDS:
                value = getattr(wanted, name)
                if len(value) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                    raise InvalidArgument(
                        f"{name} is malformed", reason="INVALID_FIELD", field=name
                    )
        # Whole seconds (every scheme signs at one-second resolution, and the response
        # must say exactly the expiry the URL carries), floored to the stable window.
        now = self.seams.clock.now()
        signed_at = rules.signing_time(now, ttl, mount.policy)
        return SignOptions(method, ttl, signed_at, capped_by, wanted, caller, asked_at=now)

    def _by_uris(self, principal: Principal, ask: Ask, req: SignInput) -> SignInput:
        """The request with its URIs resolved to a mount and keys (audited as such)."""
        field = "uri" if len(req.uris) == 1 else "uris"
        if req.mount_id or req.keys:
            raise InvalidArgument(
                f"send {field} or mount_id with keys, not both",
                reason="INVALID_FIELD",
                field=field,
            )
        if len(req.uris) > MAX_BATCH_KEYS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_KEYS} URIs per call", reason="BATCH_TOO_LARGE", field=field
            )
        mount, keys = self.mounts.by_uris(principal, ask, req.uris, field)
        self.seams.record.note(mount_id=mount.mount_id, keys=keys)
        return dataclasses.replace(req, mount_id=mount.mount_id, keys=keys)

    def sign(self, principal: Principal, req: SignInput, request_id: str) -> Signed:
        """SignURL and SignURLs: one audit record per call, however many keys."""
        tenant = tenant_name(req.tenant)
        ask = Ask((Role.SIGNER,), tenant)
        require(principal, ask)
        if req.uris:
            req = self._by_uris(principal, ask, req)
        need_keys(req.keys, MAX_BATCH_KEYS)
        # A resolved mount is read again like any other: its grant is checked in full.
        mount = self.mounts.granted(principal, ask, req.mount_id, recent=True)
        self.seams.record.note(credential_id=mount.credential_id)
        if req.method is None:
            raise InvalidArgument("method is required", reason="MISSING_FIELD", field="method")
        single = len(req.keys) == 1
        decision = require(
            principal,
            Ask(ask.roles, tenant, Reach.MOUNT, mount, req.method, req.ttl_seconds, req.keys),
            keys_field="key" if single else "keys",
        )
        options = self._options(
            mount, req.method, req.ttl_seconds, decision, req.overrides, principal.name
        )
        if single:
            check_key(req.keys[0], mount.prefix, field="key")
        else:
            check_keys(req.keys, mount.prefix)
        cred, handle = self.seams.handles.for_mount(mount)
        limit = self.seams.registry.provider(cred.kind).max_url_seconds
        handles = self.seams.handles
        urls = rules.sign_urls(
            handle,
            mount,
            req.keys,
            options,
            limit,
            handles.urls,
            (cred.credential_id, cred.record_version),
        )
        # The keys themselves (listed, counted, hashed) come from the call's draft, which
        # the transport filled from the request: hashing them twice would cost the hot path.
        self.seams.record(
            principal,
            tenant,
            "signer.sign",
            mount.mount_id,
            request_id,
            method=options.method.value,
            # One call's URLs share their expiry (rules.sign_urls caps the call, not a key).
            expires_at=urls[0].expires_at,
            capped_by=urls[0].expiry_capped_by,
            **({"by_uri": "true"} if req.uris else {}),
        )
        return Signed(mount.mount_id, urls)

    def list_prefix(
        self, principal: Principal, req: ListInput, request_id: str
    ) -> Iterator[ListPage]:
        """Validate and audit before the first page; pages stream lazily."""
        tenant = tenant_name(req.tenant)
        ask = Ask((Role.SIGNER,), tenant)
        require(principal, ask)
        mount = self.mounts.granted(principal, ask, req.mount_id, recent=True)
        self.seams.record.note(credential_id=mount.credential_id)
        prefix = check_prefix(req.prefix, mount.prefix)
        # A listing is a read: it needs GET, and the prefix inside the grant's prefixes.
        ttl = max(req.sign_ttl_seconds, 0)
        decision = require(
            principal,
            Ask(ask.roles, tenant, Reach.MOUNT, mount, Method.GET, ttl, (prefix,)),
            keys_field="prefix",
        )
        if len(req.delimiter) > 16:
            raise InvalidArgument(
                "delimiter is too long", reason="INVALID_FIELD", field="delimiter"
            )
        if not 0 <= req.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be at most {MAX_PAGE_SIZE}",
                reason="INVALID_FIELD",
                field="page_size",
            )
        sign = (
            self._options(mount, Method.GET, req.sign_ttl_seconds, decision, caller=principal.name)
            if req.sign_ttl_seconds > 0
            else None
        )
        # Ours, bound to this listing: the cloud never sees a token we did not issue for it.
        scope = ListScope(tenant, mount.mount_id, prefix, req.delimiter)
        cloud_token = self.page_tokens.open(scope, req.page_token) if req.page_token else ""
        cred, handle = self.seams.handles.for_mount(mount)
        limit = self.seams.registry.provider(cred.kind).max_url_seconds
        self.seams.record(
            principal,
            tenant,
            "signer.list",
            mount.mount_id,
            request_id,
            method=Method.GET.value if sign is not None else "",
            prefix=prefix,
            signed=str(sign is not None),
        )
        request = ListRequest(
            prefix, req.delimiter, req.page_size or MAX_PAGE_SIZE, cloud_token, principal.name
        )
        pages = rules.list_pages(handle, mount, request, sign, limit, self.seams.clock.now)
        return self.page_tokens.wrap(scope, pages)


__all__ = ["MAX_BATCH_KEYS", "ListInput", "SignInput", "Signed", "Signing"]
