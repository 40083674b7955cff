"""The rules every cloud passes through, written once above the providers.

* Expiry cap: a URL lives min(asked, the cloud's maximum, the credential's own end);
  a URL signed with temporary credentials expires SESSION_SKEW before them, so a clock
  a little off on either side cannot leave a URL that outlives what signed it. The
  response and the audit record say the real expiry and what capped it.
* True expiry: a URL that carries the credential itself (SAS_EXPIRY) works until the
  credential ends, so that is the expiry reported; it is refused when that end is past
  the mount's max TTL, unless the mount accepts the credential's lifetime.
* Listed keys: object names come from the customer's bucket, not from us. Every key
  signed from a listing passes the same checks as a requested key (no '..' segment, no
  control characters, inside the mount); a key that fails is listed without a URL and
  with the reason SignURL would have given.
* Common prefixes are reported once, however the cloud pages them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType

from bucketvault.errors import BucketVaultError, FailedPrecondition, Unavailable
from bucketvault.models import (
    ListEntry,
    ListPage,
    ListRequest,
    Method,
    Mount,
    MountPolicy,
    SignedUrl,
    SignOptions,
)
from bucketvault.objectkeys import check_key
from bucketvault.providers.base import (
    SAS_EXPIRY,
    SESSION_EXPIRY,
    BatchSigner,
    CredentialHandle,
)

SESSION_SKEW = timedelta(minutes=5)
PROVIDER_MAX = "PROVIDER_MAX"


def _credential_lifetime(
    options: SignOptions, signer: BatchSigner, policy: MountPolicy
) -> SignOptions:
    """The options of a URL that lives exactly as long as the credential it carries."""
    until = signer.valid_until
    left = 0 if until is None else int((until - options.signed_at).total_seconds())
    if left <= 0:
        raise FailedPrecondition(
            "the credential's SAS has expired: register a new one", reason="SAS_EXPIRED"
        )
    if left > policy.max_ttl_seconds and not policy.allow_credential_lifetime:
        raise FailedPrecondition(
            f"a URL carrying this credential's SAS would work for {left} s, past the "
            f"mount's max TTL of {policy.max_ttl_seconds} s: register a shorter-lived SAS, "
            "or set the mount's allow_credential_lifetime",
            reason="SAS_OUTLIVES_MOUNT_TTL",
        )
    return replace(options, expires_in=left, capped_by=SAS_EXPIRY)


def capped(
    options: SignOptions, signer: BatchSigner, max_url_seconds: int, policy: MountPolicy
) -> SignOptions:
    """The options with expires_in cut to the cloud's maximum and the credential's end,
    or set to the credential's end when the URL carries the credential itself."""
    if signer.limit_reason == SAS_EXPIRY:
        return _credential_lifetime(options, signer, policy)
    expires_in, capped_by = options.expires_in, options.capped_by
    if expires_in > max_url_seconds:
        expires_in, capped_by = max_url_seconds, PROVIDER_MAX
    until = signer.valid_until
    if until is not None:
        if signer.limit_reason == SESSION_EXPIRY:
            until -= SESSION_SKEW
        left = int((until - options.signed_at).total_seconds())
        if left <= 0:
            raise Unavailable(
                "the credential's session has expired and could not be renewed",
                reason="SESSION_EXPIRED",
            )
        if left < expires_in:
            expires_in, capped_by = left, signer.limit_reason
    return replace(options, expires_in=expires_in, capped_by=capped_by)


def sign_urls(
    handle: CredentialHandle,
    mount: Mount,
    keys: Sequence[str],
    options: SignOptions,
    max_url_seconds: int,
) -> list[SignedUrl]:
    """Sign keys (already checked against the mount) with the expiry cap applied."""
    signer = handle.signer(mount, options)
    final = capped(options, signer, max_url_seconds, mount.policy)
    batch = signer.sign(keys, final)
    expires_at = final.signed_at + timedelta(seconds=final.expires_in)
    # One read-only mapping shared by the batch: a thousand copies would cost more.
    headers = MappingProxyType(dict(batch.required_headers))
    method, capped_by = final.method, final.capped_by
    return [
        SignedUrl(key, url, method, expires_at, headers, capped_by)
        for key, url in zip(keys, batch.urls, strict=True)
    ]


def _listed_key_error(key: str, mount_prefix: str) -> str:
    try:
        check_key(key, mount_prefix)
    except BucketVaultError as exc:
        return exc.reason
    return ""


def _with_urls(
    handle: CredentialHandle,
    mount: Mount,
    entries: tuple[ListEntry, ...],
    options: SignOptions,
    max_url_seconds: int,
) -> tuple[ListEntry, ...]:
    errors = {e.key: _listed_key_error(e.key, mount.prefix) for e in entries}
    signable = [e.key for e in entries if not errors[e.key]]
    urls: dict[str, str] = {}
    if signable:
        signed = sign_urls(handle, mount, signable, options, max_url_seconds)
        urls = {s.key: s.url for s in signed}
    return tuple(replace(e, url=urls.get(e.key, ""), url_error=errors[e.key]) for e in entries)


def list_pages(
    handle: CredentialHandle,
    mount: Mount,
    request: ListRequest,
    sign: SignOptions | None,
    max_url_seconds: int,
    now: Callable[[], datetime],
) -> Iterator[ListPage]:
    """The cloud's pages with repeated prefixes dropped and listed keys signed by the rules."""
    # Listings run in lexicographic order, so a common prefix not above the highest one
    # already yielded is a repeat (a prefix spanning pages; emulators repeat them all).
    # Tracking the highest one keeps memory constant, unlike a set of every prefix seen.
    highest = ""
    if sign is not None:
        sign = replace(sign, method=Method.GET, overrides=sign.overrides.for_get())
    for raw in handle.list(mount, request):
        fresh = tuple(p for p in raw.common_prefixes if p > highest)
        if fresh:
            highest = max(highest, *fresh)
        entries = raw.entries
        if sign is not None and entries:
            # Each page is signed when it is sent: a slow consumer still gets full lifetimes.
            at = now().replace(microsecond=0)
            entries = _with_urls(
                handle, mount, entries, replace(sign, signed_at=at), max_url_seconds
            )
        yield ListPage(entries, fresh, raw.next_page_token)


__all__ = ["PROVIDER_MAX", "SESSION_SKEW", "capped", "list_pages", "sign_urls"]
