"""ListPrefix for service-account mounts through the GCS JSON API.

One HTTP call per page, yielded as soon as it arrives, so memory stays constant
however many objects the prefix holds. The page token is GCS's own pageToken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import requests

from bucketvault.errors import (
    InvalidArgument,
    Unavailable,
)
from bucketvault.models import ListEntry, ListPage, ListRequest
from bucketvault.providers.gcs.errors import ListTarget, http_error, transport_error
from bucketvault.providers.gcs.settings import GcsSettings
from bucketvault.providers.signing import encode_value

# Only what a ListPage carries: smaller responses from GCS.
_FIELDS = "items(name,size,etag,updated),prefixes,nextPageToken"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp from GCS, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class TokenSource(Protocol):
    def token(self) -> str:
        """A valid OAuth access token for storage reads."""
        ...


# The listing token for a target: one token for every bucket (a key file's), or one
# bounded to the target's bucket and prefix (a downscoped impersonated token).
TokenFor = Callable[[ListTarget], str]


def unscoped(tokens: TokenSource) -> TokenFor:
    """The same token source's token whatever the target."""
    return lambda target: tokens.token()


class JsonApiLister:
    """Lists a bucket with an OAuth token from the handle's token source."""

    def __init__(
        self, session: requests.Session, tokens: TokenFor, settings: GcsSettings | None = None
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._timeout = (settings or GcsSettings()).timeout

    def pages(self, target: ListTarget, request: ListRequest) -> Iterator[ListPage]:
        """Every page from request.page_token on, lazily."""
        token = request.page_token
        while True:
            page = self.page(target, request, token)
            yield page
            if not page.next_page_token:
                return
            token = page.next_page_token

    def page(self, target: ListTarget, request: ListRequest, page_token: str) -> ListPage:
        """One page of objects and common prefixes."""
        params = [("maxResults", str(request.page_size)), ("fields", _FIELDS)]
        if request.prefix:
            params.append(("prefix", request.prefix))
        if request.delimiter:
            params.append(("delimiter", request.delimiter))
        if page_token:
            params.append(("pageToken", page_token))
        query = "&".join(f"{encode_value(k)}={encode_value(v)}" for k, v in params)
        url = f"{target.endpoint}/storage/v1/b/{quote(target.bucket, safe='')}/o?{query}"
        headers = {"Authorization": f"Bearer {self._tokens(target)}"}
        try:
            response = self._session.get(url, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise transport_error(exc, target) from exc
        if response.status_code == 400 and page_token:
            raise InvalidArgument(
                "the page token was not accepted by GCS",
                reason="INVALID_PAGE_TOKEN",
                field="page_token",
            )
        if response.status_code != 200:
            raise http_error(response.status_code, target, what="storage.objects.list")
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise Unavailable(
                f"GCS at {target.endpoint} answered with something else than JSON",
                reason="GCS_BAD_RESPONSE",
            ) from exc
        return _to_page(body)


def _to_page(body: dict[str, Any]) -> ListPage:
    entries = tuple(
        ListEntry(
            key=str(item["name"]),
            size=int(item.get("size") or 0),
            etag=str(item.get("etag", "")),
            last_modified=parse_time(item.get("updated")),
        )
        for item in body.get("items", ())
    )
    prefixes = tuple(str(p) for p in body.get("prefixes", ()))
    return ListPage(
        entries=entries,
        common_prefixes=prefixes,
        next_page_token=str(body.get("nextPageToken", "")),
    )


__all__ = ["JsonApiLister", "ListTarget", "TokenFor", "TokenSource", "parse_time", "unscoped"]
