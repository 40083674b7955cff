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
* Listings read one page ahead: the cloud's next page is fetched while the current one
  is signed and sent, so a stream runs at the cloud's listing speed, not at the sum of
  the cloud's and the caller's time per page. At most three pages are held (one being
  fetched, one waiting, one being sent), whatever the prefix holds.
* Cache-stable URLs: the signing time is floored to a window of stable_window(ttl) =
  min(ttl // 10, 300) s, at least 1 s, counted from the epoch, and the expiry is measured
  from it. A repeat of the same URL (mount, key, method, overrides, lifetime) within one
  window is byte-identical, so browsers and CDNs keep their cached copy; a URL lives at
  most one window shorter than asked. UrlCache serves such repeats without signing again.
  A mount turns this off with cache_stable_urls=False (signed at the second, uncached).
  The credential's validity (a SAS or a session that has ended) is checked against the
  real time of the call, never against the floored one.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
# The longest stable window, and the share of the lifetime a window may take.
MAX_STABLE_WINDOW = 300
STABLE_WINDOW_DIVISOR = 10
URL_CACHE_ENTRIES = 100_000


def stable_window(ttl: int) -> int:
    """The window, in seconds, a URL of this lifetime is signed at the start of."""
    return max(1, min(ttl // STABLE_WINDOW_DIVISOR, MAX_STABLE_WINDOW))


def signing_time(now: datetime, ttl: int, policy: MountPolicy) -> datetime:
    """The time to sign a URL of lifetime ttl at: now floored to its stable window
    (to the second when the mount turned stable URLs off)."""
    now = now.replace(microsecond=0)
    if not policy.cache_stable_urls:
        return now
    window = stable_window(ttl)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window, UTC)


def _asked_at(options: SignOptions) -> datetime:
    return options.signed_at if options.asked_at is None else options.asked_at


def _credential_lifetime(
    options: SignOptions, signer: BatchSigner, policy: MountPolicy
) -> SignOptions:
    """The options of a URL that lives exactly as long as the credential it carries."""
    until = signer.valid_until
    # The URL's expiry is the credential's end (measured from the signing time, so that
    # expires_at says exactly that); whether it is still usable is a question for now.
    left = 0 if until is None else int((until - options.signed_at).total_seconds())
    real = 0 if until is None else int((until - _asked_at(options)).total_seconds())
    if real <= 0:
        raise FailedPrecondition(
            "the credential's SAS has expired: register a new one", reason="SAS_EXPIRED"
        )
    if real > policy.max_ttl_seconds and not policy.allow_credential_lifetime:
        raise FailedPrecondition(
            f"a URL carrying this credential's SAS would work for {real} s, past the "
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
        if int((until - _asked_at(options)).total_seconds()) <= 0:
            raise Unavailable(
                "the credential's session has expired and could not be renewed",
                reason="SESSION_EXPIRED",
            )
        if left < expires_in:
            expires_in, capped_by = left, signer.limit_reason
    return replace(options, expires_in=expires_in, capped_by=capped_by)


class UrlCache:
    """Stable URLs already signed, by everything that makes them (bounded LRU, per process).

    An entry's key names the mount (id and version: a rebind moves it), the credential
    (id and record version), the key, the method, the overrides, the signing time, the
    final lifetime and the caller. The use case reads the mount and checks its credential
    is active before asking, so a rebound mount or a revoked credential never reaches an
    old entry; forget() also drops a revoked credential's entries at once.
    """

    def __init__(self, capacity: int = URL_CACHE_ENTRIES) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[str, str, Mapping[str, str]]] = OrderedDict()
        # Entries per credential id, so that forget() scans only when it has work.
        self._held: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(
        self, scope: Hashable, keys: Sequence[str]
    ) -> list[tuple[str, str, Mapping[str, str]] | None]:
        """The cached (credential id, URL, required headers) of each key, or None."""
        entries = self._entries
        with self._lock:
            found = [entries.get((scope, k)) for k in keys]
            hits = 0
            for k, hit in zip(keys, found, strict=True):
                if hit is not None:
                    entries.move_to_end((scope, k))
                    hits += 1
            self.hits += hits
            self.misses += len(keys) - hits
        return found

    def put_many(
        self,
        scope: Hashable,
        credential_id: str,
        pairs: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> None:
        """Remember (key, URL) pairs signed under scope, dropping the least recently used."""
        entries, held = self._entries, self._held
        with self._lock:
            for key, url in pairs:
                if entries.get((scope, key)) is None:
                    held[credential_id] = held.get(credential_id, 0) + 1
                entries[(scope, key)] = (credential_id, url, headers)
            while len(entries) > self._capacity:
                _, (old, _, _) = entries.popitem(last=False)
                if held[old] <= 1:
                    del held[old]
                else:
                    held[old] -= 1

    def forget(self, credential_id: str) -> None:
        """Drop every URL signed with a credential (revoked)."""
        with self._lock:
            if self._held.pop(credential_id, 0) == 0:
                return
            gone = [k for k, v in self._entries.items() if v[0] == credential_id]
            for k in gone:
                del self._entries[k]

    def forget_mount(self, mount_id: str) -> None:
        """Drop every URL signed for a mount (changed or deleted). Its entries could not
        be served anyway (their scope names the mount's old version); this frees them."""
        with self._lock:
            # An entry's key is (scope, object key), and a scope leads with the mount id.
            gone = [
                k
                for k in self._entries
                if isinstance(k, tuple) and isinstance(k[0], tuple) and k[0][0] == mount_id
            ]
            for k in gone:
                old = self._entries.pop(k)[0]
                if self._held[old] <= 1:
                    del self._held[old]
                else:
                    self._held[old] -= 1

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()
            self._held.clear()


def _scope(mount: Mount, credential: tuple[str, int], final: SignOptions) -> Hashable:
    return (
        mount.mount_id,
        mount.version,
        credential,
        final.method,
        final.overrides,
        final.signed_at,
        final.expires_in,
        final.capped_by,
        # A URL may carry a session made for its caller (AWS SourceIdentity): one caller's
        # URL must never be served to another, or the cloud's logs name the wrong one.
        final.caller,
    )


def sign_urls(
    handle: CredentialHandle,
    mount: Mount,
    keys: Sequence[str],
    options: SignOptions,
    max_url_seconds: int,
    cache: UrlCache | None = None,
    credential: tuple[str, int] = ("", 0),
) -> list[SignedUrl]:
    """Sign keys (already checked against the mount) with the expiry cap applied.

    With a cache and a mount whose URLs are stable, repeats are served from the cache;
    credential is the (id, record version) the handle signs with."""
    signer = handle.signer(mount, options)
    final = capped(options, signer, max_url_seconds, mount.policy)
    expires_at = final.signed_at + timedelta(seconds=final.expires_in)
    method, capped_by = final.method, final.capped_by
    if cache is None or not mount.policy.cache_stable_urls:
        batch = signer.sign(keys, final)
        # One read-only mapping shared by the batch: a thousand copies would cost more.
        headers: Mapping[str, str] = MappingProxyType(dict(batch.required_headers))
        return [
            SignedUrl(key, url, method, expires_at, headers, capped_by)
            for key, url in zip(keys, batch.urls, strict=True)
        ]
    scope = _scope(mount, credential, final)
    found = cache.get_many(scope, keys)
    missing = [k for k, hit in zip(keys, found, strict=True) if hit is None]
    fresh: dict[str, str] = {}
    headers = MappingProxyType({})
    if missing:
        batch = signer.sign(missing, final)
        headers = MappingProxyType(dict(batch.required_headers))
        pairs = list(zip(missing, batch.urls, strict=True))
        cache.put_many(scope, credential[0], pairs, headers)
        fresh = dict(pairs)
    out: list[SignedUrl] = []
    for key, hit in zip(keys, found, strict=True):
        if hit is None:
            out.append(SignedUrl(key, fresh[key], method, expires_at, headers, capped_by))
        else:
            out.append(SignedUrl(key, hit[1], method, expires_at, hit[2], capped_by))
    return out


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


# How long the fetching thread waits to hand over a page before it checks whether the
# caller went away (a closed stream stops it within this time).
_HANDOVER_POLL_SECONDS = 0.1


def read_ahead(pages: Iterator[ListPage]) -> Iterator[ListPage]:
    """The same pages, the next one fetched by a thread while the caller holds this one.

    The thread runs in a copy of the caller's context (audit draft, call, telemetry) and
    hands over one page at a time; an error of the cloud is raised to the caller where
    the page would have been. Closing the iterator stops the thread after its current
    request."""
    handover: queue.Queue[tuple[ListPage | None, BaseException | None]] = queue.Queue(1)
    stop = threading.Event()

    def offer(item: tuple[ListPage | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=_HANDOVER_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not offer((page, None)):
                    return
            offer((None, None))
        except BaseException as exc:  # handed to the caller, raised there
            offer((None, exc))

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(fetch,), name="list-read-ahead", daemon=True).start()
    try:
        while True:
            page, error = handover.get()
            if error is not None:
                raise error
            if page is None:
                return
            yield page
    finally:
        stop.set()


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
    for raw in read_ahead(handle.list(mount, request)):
        fresh = tuple(p for p in raw.common_prefixes if p > highest)
        if fresh:
            highest = max(highest, *fresh)
        entries = raw.entries
        if sign is not None and entries:
            # Each page is signed when it is sent: a slow consumer still gets full lifetimes.
            at = now()
            page_options = replace(
                sign, signed_at=signing_time(at, sign.expires_in, mount.policy), asked_at=at
            )
            entries = _with_urls(handle, mount, entries, page_options, max_url_seconds)
        yield ListPage(entries, fresh, raw.next_page_token)


__all__ = [
    "MAX_STABLE_WINDOW",
    "PROVIDER_MAX",
    "SESSION_SKEW",
    "URL_CACHE_ENTRIES",
    "UrlCache",
    "capped",
    "list_pages",
    "read_ahead",
    "sign_urls",
    "signing_time",
    "stable_window",
]
