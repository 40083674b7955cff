"""ListPrefix page tokens: ours, wrapping the cloud's.

A token the caller holds is ``v1.<key id>.<cloud token>.<mac>`` (base64url parts), the
MAC an HMAC-SHA256 under a service key (``page-token``, stored under the KEK) over the
cloud's token and the listing it belongs to: tenant, mount, absolute prefix, delimiter.
A token that does not verify for the listing it is sent with (forged, altered, or taken
from another tenant's, mount's, prefix's or delimiter's listing) is refused with
INVALID_PAGE_TOKEN before anything reaches the cloud.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bucketvault.errors import InvalidArgument
from bucketvault.models import ListPage

_VERSION = "v1"
_DOMAIN = b"bucketvault page-token v1\x00"
# Cloud tokens run to a few hundred bytes (Azure's markers are the longest): anything
# longer than this was never ours.
MAX_PAGE_TOKEN = 8192


@dataclass(frozen=True)
class ListScope:
    """The listing a token belongs to."""

    tenant: str
    mount_id: str
    prefix: str
    delimiter: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if "=" in text:
        raise ValueError("padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _field(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return len(raw).to_bytes(4, "big") + raw


def _invalid() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not one this listing returned: restart the listing",
        reason="INVALID_PAGE_TOKEN",
        field="page_token",
    )


class PageTokens:
    """Seals the cloud's page tokens to their listing, and opens them only for it."""

    def __init__(self, key_id: str, keys: Mapping[str, bytes]) -> None:
        self._key_id = key_id
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"PageTokens(key_id={self._key_id!r})"

    def _mac(self, key_id: str, scope: ListScope, cloud: bytes) -> bytes:
        message = b"".join(
            (
                _DOMAIN,
                _field(key_id),
                _field(scope.tenant),
                _field(scope.mount_id),
                _field(scope.prefix),
                _field(scope.delimiter),
                _field(cloud),
            )
        )
        return hmac.new(self._keys[key_id], message, hashlib.sha256).digest()

    def seal(self, scope: ListScope, cloud_token: str) -> str:
        """Our token for the cloud's next-page token of this listing."""
        cloud = cloud_token.encode("utf-8", "surrogatepass")
        kid = self._key_id
        return f"{_VERSION}.{kid}.{_b64(cloud)}.{_b64(self._mac(kid, scope, cloud))}"

    def open(self, scope: ListScope, token: str) -> str:
        """The cloud's token inside ours, if ours was made for this listing."""
        if len(token) > MAX_PAGE_TOKEN:
            raise _invalid()
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or parts[1] not in self._keys:
            raise _invalid()
        try:
            cloud, given = _unb64(parts[2]), _unb64(parts[3])
        except (ValueError, binascii.Error):
            raise _invalid() from None
        if not cloud or not hmac.compare_digest(given, self._mac(parts[1], scope, cloud)):
            raise _invalid()
        return cloud.decode("utf-8", "surrogatepass")

    def wrap(self, scope: ListScope, pages: Iterator[ListPage]) -> Iterator[ListPage]:
        """The pages with each cloud token sealed to the listing."""
        for page in pages:
            token = page.next_page_token
            yield (
                dataclasses.replace(page, next_page_token=self.seal(scope, token))
                if token
                else page
            )


__all__ = ["MAX_PAGE_TOKEN", "ListScope", "PageTokens"]
